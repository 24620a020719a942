// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {TestUSD} from "../src/TestUSD.sol";
import {Cheats} from "./Cheats.sol";

/// Signs like an ERC-1271 wallet owned by one key.
contract Wallet {
    address private immutable OWNER;

    constructor(address owner) {
        OWNER = owner;
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        (bytes32 r, bytes32 s) = abi.decode(signature[:64], (bytes32, bytes32));
        return ecrecover(digest, uint8(signature[64]), r, s) == OWNER ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

contract TestUSDTest is Cheats {
    TestUSD private token;
    uint256 private constant ALICE_KEY = 0xA11CE;
    address private alice;
    address private constant BOB = address(0xB0B);

    function setUp() public {
        token = new TestUSD();
        alice = vm.addr(ALICE_KEY);
        token.mint(alice, 1_000_000_000);
        vm.warp(1_000_000);
    }

    function digest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function authorization(bytes32 typehash, address from, address to, uint256 value, bytes32 nonce)
        private
        view
        returns (bytes32)
    {
        return digest(keccak256(abi.encode(typehash, from, to, value, uint256(0), uint256(2_000_000), nonce)));
    }

    function testMetadataIsUsdcShaped() public view {
        assertEq(token.decimals(), 6, "decimals");
        assertEq(keccak256(bytes(token.version())), keccak256("2"), "domain version");
    }

    function testFuzz_TransfersConserveSupply(address to, uint256 minted, uint256 sent) public {
        vm.assume(to != address(0) && to != alice);
        minted = minted % (type(uint128).max);
        token.mint(to, minted);
        uint256 supply = token.totalSupply();
        sent = sent % (token.balanceOf(alice) + 1);
        vm.prank(alice);
        token.transfer(to, sent);
        assertEq(token.balanceOf(alice) + token.balanceOf(to), supply, "supply");
        assertEq(token.totalSupply(), supply, "total supply");
    }

    function testTransferAboveBalanceReverts() public {
        vm.prank(BOB);
        vm.expectRevert(TestUSD.InsufficientBalance.selector);
        token.transfer(alice, 1);
    }

    function testTransferFromSpendsTheAllowance() public {
        vm.prank(alice);
        token.approve(BOB, 100);
        vm.prank(BOB);
        token.transferFrom(alice, BOB, 60);
        assertEq(token.allowance(alice, BOB), 40, "allowance left");
        vm.prank(BOB);
        vm.expectRevert(TestUSD.InsufficientAllowance.selector);
        token.transferFrom(alice, BOB, 41);
    }

    function testPermitOnceThenReplayRefused() public {
        bytes32 structHash =
            keccak256(abi.encode(token.PERMIT_TYPEHASH(), alice, BOB, uint256(500), uint256(0), uint256(2_000_000)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, digest(structHash));
        token.permit(alice, BOB, 500, 2_000_000, v, r, s);
        assertEq(token.allowance(alice, BOB), 500, "permit");
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        token.permit(alice, BOB, 500, 2_000_000, v, r, s);
    }

    function testFuzz_TransferWithAuthorization(uint256 value, bytes32 nonce) public {
        value = value % 1_000_000_001;
        bytes32 d = authorization(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), alice, BOB, value, nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        token.transferWithAuthorization(alice, BOB, value, 0, 2_000_000, nonce, v, r, s);
        assertEq(token.balanceOf(BOB), value, "paid");
        assertTrue(token.authorizationState(alice, nonce), "nonce used");
        vm.expectRevert(TestUSD.AuthorizationAlreadyUsed.selector);
        token.transferWithAuthorization(alice, BOB, value, 0, 2_000_000, nonce, v, r, s);
    }

    function testAuthorizationOutsideItsWindowReverts() public {
        bytes32 d = authorization(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), alice, BOB, 1, bytes32(uint256(1)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        vm.warp(2_000_000);
        vm.expectRevert(TestUSD.Expired.selector);
        token.transferWithAuthorization(alice, BOB, 1, 0, 2_000_000, bytes32(uint256(1)), v, r, s);
        vm.warp(0);
        vm.expectRevert(TestUSD.NotYetValid.selector);
        token.transferWithAuthorization(alice, BOB, 1, 0, 2_000_000, bytes32(uint256(1)), v, r, s);
    }

    function testTamperedOrMalleableAuthorizationReverts() public {
        bytes32 nonce = bytes32(uint256(7));
        bytes32 d = authorization(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), alice, BOB, 10, nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        token.transferWithAuthorization(alice, BOB, 11, 0, 2_000_000, nonce, v, r, s);
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        token.transferWithAuthorization(alice, BOB, 10, 0, 2_000_000, nonce, twin(v, r, s));
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        token.transferWithAuthorization(address(0), BOB, 0, 0, 2_000_000, nonce, hex"");
    }

    function testReceiveWithAuthorizationOnlyByThePayee() public {
        bytes32 nonce = bytes32(uint256(8));
        bytes32 d = authorization(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), alice, BOB, 10, nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        vm.expectRevert(TestUSD.CallerMustBePayee.selector);
        token.receiveWithAuthorization(alice, BOB, 10, 0, 2_000_000, nonce, v, r, s);
        vm.prank(BOB);
        token.receiveWithAuthorization(alice, BOB, 10, 0, 2_000_000, nonce, v, r, s);
        assertEq(token.balanceOf(BOB), 10, "received");
    }

    function testCancelledAuthorizationCannotBeUsed() public {
        bytes32 nonce = bytes32(uint256(9));
        bytes32 cancel = digest(keccak256(abi.encode(token.CANCEL_AUTHORIZATION_TYPEHASH(), alice, nonce)));
        (uint8 cv, bytes32 cr, bytes32 cs) = vm.sign(ALICE_KEY, cancel);
        token.cancelAuthorization(alice, nonce, cv, cr, cs);
        bytes32 d = authorization(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), alice, BOB, 10, nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        vm.expectRevert(TestUSD.AuthorizationAlreadyUsed.selector);
        token.transferWithAuthorization(alice, BOB, 10, 0, 2_000_000, nonce, v, r, s);
    }

    function testContractSignaturesByErc1271() public {
        Wallet wallet = new Wallet(alice);
        token.mint(address(wallet), 100);
        bytes32 nonce = bytes32(uint256(10));
        bytes32 d = authorization(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), address(wallet), BOB, 100, nonce);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_KEY, d);
        token.transferWithAuthorization(address(wallet), BOB, 100, 0, 2_000_000, nonce, packed(v, r, s));
        assertEq(token.balanceOf(BOB), 100, "paid by the wallet");
        (v, r, s) = vm.sign(0xBAD, d);
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        token.transferWithAuthorization(address(wallet), BOB, 100, 0, 2_000_000, bytes32(uint256(11)), packed(v, r, s));
    }
}
