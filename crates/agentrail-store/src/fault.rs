//! A storage backend that fails the way disks fail, for tests and
//! simulation: writes that are lost unless synced, torn writes, a full disk,
//! a power cut in the middle of a commit, and bytes that change after they
//! were written.
//!
//! All handles cloned from one [`FaultyDisk`] share one simulated disk. A
//! [`FaultyDisk::crash`] ends the current "boot": every handle of it fails
//! from then on, as a process would after a power cut, and the returned
//! handle sees only what survived.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::StorageBackend;

#[derive(Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug)]
struct Disk {
    boot: u64,
    /// What reads see: durable bytes plus unsynced operations.
    image: Vec<u8>,
    /// What survives a crash if no unsynced operation reached the platter.
    durable: Vec<u8>,
    pending: Vec<Pending>,
    capacity: u64,
    /// Write and sync calls left before the power fails (None: never).
    power_left: Option<u64>,
    syncs: u64,
}

/// A simulated disk. See the module docs.
#[derive(Clone, Debug)]
pub struct FaultyDisk {
    disk: Arc<Mutex<Disk>>,
    boot: u64,
}

fn power_lost() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "simulated power loss")
}

fn full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "simulated full disk")
}

fn apply(image: &mut Vec<u8>, operation: &Pending, torn_bytes: Option<usize>) {
    match operation {
        Pending::SetLen(len) => image.resize(*len as usize, 0),
        Pending::Write { offset, data } => {
            let data = &data[..torn_bytes.unwrap_or(data.len()).min(data.len())];
            let end = *offset as usize + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*offset as usize..end].copy_from_slice(data);
        }
    }
}

impl FaultyDisk {
    /// An empty disk holding at most `capacity` bytes.
    pub fn new(capacity: u64) -> FaultyDisk {
        let disk = Disk {
            boot: 0,
            image: Vec::new(),
            durable: Vec::new(),
            pending: Vec::new(),
            capacity,
            power_left: None,
            syncs: 0,
        };
        FaultyDisk {
            disk: Arc::new(Mutex::new(disk)),
            boot: 0,
        }
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let disk = self.disk.lock().map_err(|_| power_lost())?;
        if disk.boot != self.boot {
            return Err(power_lost());
        }
        Ok(disk)
    }

    /// Operations written since the last sync: the points a crash can cut.
    pub fn unsynced_operations(&self) -> usize {
        self.disk.lock().expect("test disk lock").pending.len()
    }

    /// Syncs so far (one per durable commit, give or take redb's own).
    pub fn syncs(&self) -> u64 {
        self.disk.lock().expect("test disk lock").syncs
    }

    /// The power fails after `calls` more write or sync calls.
    pub fn fail_power_after(&self, calls: u64) {
        self.disk.lock().expect("test disk lock").power_left = Some(calls);
    }

    /// The storage works again without a crash (a transient failure ended).
    pub fn restore_power(&self) {
        self.disk.lock().expect("test disk lock").power_left = None;
    }

    pub fn set_capacity(&self, capacity: u64) {
        self.disk.lock().expect("test disk lock").capacity = capacity;
    }

    /// Bytes on the disk now.
    pub fn len_bytes(&self) -> u64 {
        self.disk.lock().expect("test disk lock").image.len() as u64
    }

    /// An independent disk holding a copy of what this one holds now.
    pub fn fork(&self) -> FaultyDisk {
        let disk = self.disk.lock().expect("test disk lock");
        let copy = Disk {
            boot: 0,
            image: disk.image.clone(),
            durable: disk.image.clone(),
            pending: Vec::new(),
            capacity: disk.capacity,
            power_left: None,
            syncs: 0,
        };
        FaultyDisk {
            disk: Arc::new(Mutex::new(copy)),
            boot: 0,
        }
    }

    /// Flips bits of a byte that was already written, on the platter too.
    pub fn corrupt(&self, offset: u64, mask: u8) {
        let mut disk = self.disk.lock().expect("test disk lock");
        let offset = offset as usize;
        if offset < disk.image.len() {
            disk.image[offset] ^= mask;
        }
        if offset < disk.durable.len() {
            disk.durable[offset] ^= mask;
        }
    }

    /// Cuts the power: of the unsynced operations, the first `keep` reach the
    /// disk, then `torn_bytes` of the next one (a torn write), and nothing
    /// after. Every handle of the old boot fails from now on; the returned
    /// handle starts the next boot with the surviving bytes.
    pub fn crash(&self, keep: usize, torn_bytes: Option<usize>) -> FaultyDisk {
        let mut disk = self.disk.lock().expect("test disk lock");
        let mut survived = disk.durable.clone();
        for operation in disk.pending.iter().take(keep) {
            apply(&mut survived, operation, None);
        }
        if let (Some(torn), Some(operation)) = (torn_bytes, disk.pending.get(keep)) {
            apply(&mut survived, operation, Some(torn));
        }
        disk.boot += 1;
        disk.image = survived.clone();
        disk.durable = survived;
        disk.pending.clear();
        disk.power_left = None;
        FaultyDisk {
            disk: Arc::clone(&self.disk),
            boot: disk.boot,
        }
    }

    fn spend_power(disk: &mut Disk) -> io::Result<()> {
        match disk.power_left {
            Some(0) => Err(power_lost()),
            Some(left) => {
                disk.power_left = Some(left - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl StorageBackend for FaultyDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock()?.image.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let disk = self.lock()?;
        let start = offset as usize;
        let end = start
            .checked_add(out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        if end > disk.image.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        out.copy_from_slice(&disk.image[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.lock()?;
        FaultyDisk::spend_power(&mut disk)?;
        if len > disk.capacity {
            return Err(full());
        }
        let operation = Pending::SetLen(len);
        apply(&mut disk.image, &operation, None);
        disk.pending.push(operation);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.lock()?;
        FaultyDisk::spend_power(&mut disk)?;
        // The platter catches up with the page cache: replaying what was
        // written since the last sync costs what was written, not the size
        // of the whole disk (which a copy of the image would).
        let Disk {
            durable, pending, ..
        } = &mut *disk;
        for operation in pending.drain(..) {
            apply(durable, &operation, None);
        }
        disk.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.lock()?;
        FaultyDisk::spend_power(&mut disk)?;
        if offset + data.len() as u64 > disk.capacity {
            return Err(full());
        }
        let operation = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut disk.image, &operation, None);
        disk.pending.push(operation);
        Ok(())
    }
}
