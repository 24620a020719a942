#!/usr/bin/env python3
"""An independent verifier of agentrail receipts and consistency proofs.

Written from the specifications alone, sharing no code with the Rust
implementation, using only the Python standard library:

- RFC 8032 (Ed25519 verification, section 5.1.7),
- RFC 9162 (Merkle tree hashes, inclusion and consistency proof checks,
  sections 2.1.3.2 and 2.1.4.2),
- C2SP signed-note and tlog-checkpoint,
- RFC 9421 / RFC 9530 (the signature base and Content-Digest of the
  recorded request), with the did:key method (base58btc, multicodec 0xed01).

Usage:
  independent_verifier.py receipt RECEIPT.json LOG_KEY
  independent_verifier.py consistency LOG_KEY OLD_NOTE_FILE NEW_NOTE_FILE PROOF.json

Prints "OK ..." and exits 0, or prints the reason and exits 1.
"""

import base64
import hashlib
import json
import sys

# --- Ed25519 (RFC 8032) -------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
BASE_Y = (4 * pow(5, P - 2, P)) % P


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def decode_point(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def multiply(scalar, point):
    result = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = add(result, point)
        point = add(point, point)
        scalar >>= 1
    return result


def same_point(p, q):
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


BASE = (recover_x(BASE_Y, 0), BASE_Y, 1, recover_x(BASE_Y, 0) * BASE_Y % P)


def ed25519_verify(public, message, signature):
    """RFC 8032 section 5.1.7, with the cofactored check it permits."""
    if len(signature) != 64:
        return False
    a = decode_point(public)
    r = decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    left = multiply(8 * s, BASE)
    right = add(multiply(8, r), multiply(8 * k, a))
    return same_point(left, right)


# --- did:key -------------------------------------------------------------

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def did_key_public(did):
    if not did.startswith("did:key:z"):
        raise ValueError("not a did:key")
    value = 0
    for char in did[len("did:key:z"):]:
        value = value * 58 + ALPHABET.index(char)
    raw = value.to_bytes(34, "big")
    if raw[:2] != b"\xed\x01":
        raise ValueError("not an Ed25519 did:key")
    return raw[2:]


# --- RFC 9162 ------------------------------------------------------------


def leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, proof):
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# --- C2SP signed note and checkpoint --------------------------------------


def parse_log_key(text):
    name, key_id, key = text.strip().split("+", 2)
    raw = base64.b64decode(key, validate=True)
    if raw[0] != 1 or len(raw) != 33:
        raise ValueError("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if bytes.fromhex(key_id) != expected:
        raise ValueError("the key id does not match the key")
    return name, expected, raw[1:]


def open_checkpoint(note, log_key):
    name, key_id, public = log_key
    split = note.rindex("\n\n")
    text = note[: split + 1]
    for line in note[split + 2:].splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError("malformed signature line")
        signer, signature = line[2:].split(" ", 1)
        raw = base64.b64decode(signature, validate=True)
        if signer == name and raw[:4] == key_id:
            if not ed25519_verify(public, text.encode(), raw[4:]):
                raise ValueError("the checkpoint signature does not verify")
            origin, size, root = text.split("\n")[:3]
            if origin != name:
                raise ValueError("the checkpoint names another log")
            return int(size), base64.b64decode(root, validate=True)
    raise ValueError("the checkpoint is not signed by the log key")


# --- Structured fields (RFC 8941), the subset signature headers use -------

LCALPHA = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
ALPHA = LCALPHA + LCALPHA.upper()
TCHAR = ALPHA + DIGITS + "!#$%&'*+-.^_`|~"


class Fields:
    """A strict parser of RFC 8941 dictionaries (items and inner lists)."""

    def __init__(self, text):
        self.text, self.at = text, 0

    def peek(self):
        return self.text[self.at] if self.at < len(self.text) else ""

    def fail(self, what):
        raise ValueError(f"structured field: {what} at {self.at}")

    def spaces(self):
        while self.peek() == " ":
            self.at += 1

    def key(self):
        start = self.at
        if not self.peek() or self.peek() not in LCALPHA + "*":
            self.fail("a key starts with a-z or *")
        while self.peek() and self.peek() in LCALPHA + DIGITS + "_-.*":
            self.at += 1
        return self.text[start : self.at]

    def bare_item(self):
        char = self.peek()
        if char == '"':
            self.at += 1
            value = ""
            while True:
                char = self.peek()
                self.at += 1
                if char == "\\":
                    if self.peek() not in ('"', "\\"):
                        self.fail("only \\\" and \\\\ are escapes")
                    value += self.peek()
                    self.at += 1
                elif char == '"':
                    return ("string", value)
                elif char == "" or not (0x20 <= ord(char) <= 0x7E):
                    self.fail("a string holds printable ASCII only")
                else:
                    value += char
        if char and char in "-" + DIGITS:
            start = self.at
            self.at += 1
            while self.peek() and self.peek() in DIGITS + ".":
                self.at += 1
            text = self.text[start : self.at]
            digits = text.lstrip("-")
            if "." in digits:
                whole, _, fraction = digits.partition(".")
                if not whole or not fraction or len(whole) > 12 or len(fraction) > 3 or "." in fraction:
                    self.fail("a bad decimal")
                return ("decimal", text)
            if not digits or len(digits) > 15:
                self.fail("a bad integer")
            return ("integer", int(text))
        if char == ":":
            end = self.text.find(":", self.at + 1)
            if end < 0:
                self.fail("an unterminated byte sequence")
            value = base64.b64decode(self.text[self.at + 1 : end], validate=True)
            self.at = end + 1
            return ("bytes", value)
        if char == "?":
            if self.text[self.at + 1 : self.at + 2] not in ("0", "1"):
                self.fail("a boolean is ?0 or ?1")
            self.at += 2
            return ("boolean", self.text[self.at - 1] == "1")
        if char and char in ALPHA + "*":
            start = self.at
            self.at += 1
            while self.peek() and self.peek() in TCHAR + ":/":
                self.at += 1
            return ("token", self.text[start : self.at])
        self.fail("an item was expected")

    def params(self):
        params = {}
        while self.peek() == ";":
            self.at += 1
            self.spaces()
            name = self.key()
            value = ("boolean", True)
            if self.peek() == "=":
                self.at += 1
                value = self.bare_item()
            params[name] = value
        return params

    def member(self):
        if self.peek() == "(":
            self.at += 1
            items = []
            while True:
                self.spaces()
                if self.peek() == ")":
                    self.at += 1
                    return ("list", items, self.params())
                items.append((self.bare_item(), self.params()))
                if self.peek() not in (" ", ")"):
                    self.fail("inner list items are separated by spaces")
        return ("item", self.bare_item(), self.params())

    def dictionary(self):
        members = {}
        self.spaces()
        while self.at < len(self.text):
            name = self.key()
            if self.peek() == "=":
                self.at += 1
                members[name] = self.member()
            else:
                members[name] = ("item", ("boolean", True), self.params())
            self.spaces()
            if self.at < len(self.text):
                if self.peek() != ",":
                    self.fail("dictionary members are separated by commas")
                self.at += 1
                self.spaces()
                if self.at == len(self.text):
                    self.fail("a trailing comma")
        return members


def serialize_bare(item):
    kind, value = item
    if kind == "string":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind == "integer":
        return str(value)
    if kind == "decimal":
        whole, _, fraction = value.partition(".")
        return whole + "." + (fraction.rstrip("0") or "0")
    if kind == "bytes":
        return ":" + base64.b64encode(value).decode() + ":"
    if kind == "boolean":
        return "?1" if value else "?0"
    return value


def serialize_params(params):
    return "".join(
        ";" + name + ("" if value == ("boolean", True) else "=" + serialize_bare(value))
        for name, value in params.items()
    )


def serialize_dictionary(members):
    out = []
    for name, member in members.items():
        if member[0] == "list":
            _, items, params = member
            inner = " ".join(serialize_bare(item) + serialize_params(p) for item, p in items)
            out.append(f"{name}=({inner}){serialize_params(params)}")
        elif member[1] == ("boolean", True):
            out.append(name + serialize_params(member[2]))
        else:
            out.append(f"{name}={serialize_bare(member[1])}{serialize_params(member[2])}")
    return ", ".join(out)


def canonical_dictionary(text):
    """A dictionary written exactly as RFC 8941 serializes it."""
    members = Fields(text).dictionary()
    if serialize_dictionary(members) != text:
        raise ValueError("a signature header is not written as RFC 8941 serializes it")
    return members


# --- The recorded request (RFC 9421 / RFC 9530) ---------------------------


def verify_request(entry, network):
    request = entry["request"]
    if request["kind"] == "clock":
        if request != {"kind": "clock"}:
            raise ValueError("a clock entry has no fields")
        return "the clock (what fell due, checked by replaying the log)"
    if request["kind"] != "http":
        return "node-signed command (checked by the ledger core's own format)"
    body = base64.b64decode(request["body"], validate=True)
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    if request["content_digest"] != digest:
        raise ValueError("the body does not match its Content-Digest")
    # Any label; the signature whose tag is this log's network id
    # ("agentrail:<log origin>"): the request is bound to one ledger.
    inputs = canonical_dictionary(request["signature_input"])
    chosen = [
        (label, member)
        for label, member in inputs.items()
        if member[0] == "list" and member[2].get("tag") == ("string", network)
    ]
    if not chosen:
        raise ValueError("the request was signed for another ledger than this log's")
    label, (_, items, params) = chosen[0]
    names = [value for (kind, value), item_params in items if kind == "string" and not item_params]
    if sorted(names) != sorted(["@method", "@path", "content-digest"]) or len(names) != len(items):
        raise ValueError("the request must cover @method, @path and content-digest, and no more")
    values = params
    if values.get("keyid", ("", ""))[0] != "string":
        raise ValueError("the request's keyid is not a string")
    keyid = values["keyid"][1]
    if keyid != entry["signer"]:
        raise ValueError("the request's keyid is not the recorded signer")
    if values.get("alg", ("string", "ed25519")) != ("string", "ed25519"):
        raise ValueError("the request is not signed with Ed25519")
    component = {"@method": request["method"], "@path": request["path"], "content-digest": request["content_digest"]}
    inner = "(" + " ".join(serialize_bare(("string", n)) for n in names) + ")" + serialize_params(params)
    base = "".join(f'"{name}": {component[name]}\n' for name in names) + f'"@signature-params": {inner}'
    signatures = canonical_dictionary(request["signature"])
    kind, signature = signatures.get(label, ("item", ("", b"")))[1]
    if kind != "bytes":
        raise ValueError("the request's Signature has no signature for its label")
    if not ed25519_verify(did_key_public(keyid), base.encode(), signature):
        raise ValueError("the request signature does not verify")
    return "HTTP request signed by " + keyid


def check_receipt(path, key_text):
    receipt = json.load(open(path))
    log_key = parse_log_key(key_text)
    size, root = open_checkpoint(receipt["checkpoint"], log_key)
    if size != receipt["tree_size"]:
        raise ValueError("the receipt's tree size is not its checkpoint's")
    leaf = base64.b64decode(receipt["leaf"], validate=True)
    proof = [base64.b64decode(h, validate=True) for h in receipt["inclusion_proof"]]
    if not verify_inclusion(leaf_hash(leaf), receipt["index"], size, proof, root):
        raise ValueError("the inclusion proof does not lead to the signed root")
    entry = json.loads(leaf)
    who = verify_request(entry, "agentrail:" + log_key[0])
    return f"OK entry {receipt['index']} of {size}: {who} at {entry['time']}"


def check_consistency(key_text, old_path, new_path, proof_path):
    log_key = parse_log_key(key_text)
    first, first_root = open_checkpoint(open(old_path).read(), log_key)
    second, second_root = open_checkpoint(open(new_path).read(), log_key)
    proof = [base64.b64decode(h, validate=True) for h in json.load(open(proof_path))["proof"]]
    if not verify_consistency(first, second, first_root, second_root, proof):
        raise ValueError("the consistency proof does not verify")
    return f"OK the tree of {second} entries extends the tree of {first}"


if __name__ == "__main__":
    try:
        if sys.argv[1] == "receipt":
            print(check_receipt(sys.argv[2], sys.argv[3]))
        elif sys.argv[1] == "consistency":
            print(check_consistency(*sys.argv[2:6]))
        else:
            raise ValueError("usage: receipt RECEIPT KEY | consistency KEY OLD NEW PROOF")
    except (ValueError, KeyError, IndexError) as error:
        print(f"INVALID: {error}")
        sys.exit(1)
