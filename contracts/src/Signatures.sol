// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

// Half the secp256k1 group order: a signature with a higher `s` is the
// malleable twin of one with a lower `s`, and is refused.
uint256 constant SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

/// The signer of a 65-byte `r ‖ s ‖ v` signature of `digest`, or the zero
/// address (which never signs) for a malformed or malleable signature.
function recover(bytes32 digest, bytes memory signature) pure returns (address) {
    if (signature.length != 65) return address(0);
    bytes32 r;
    bytes32 s;
    uint8 v;
    assembly ("memory-safe") {
        r := mload(add(signature, 0x20))
        s := mload(add(signature, 0x40))
        v := byte(0, mload(add(signature, 0x60)))
    }
    if (uint256(s) > SECP256K1_HALF_ORDER) return address(0);
    if (v != 27 && v != 28) return address(0);
    return ecrecover(digest, v, r, s);
}
