// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {AgentrailVault} from "../src/AgentrailVault.sol";
import {TestUSD} from "../src/TestUSD.sol";
import {Cheats} from "./Cheats.sol";

contract AgentrailVaultTest is Cheats {
    event Deposited(uint256 indexed id, address indexed from, bytes32 indexed account, uint256 amount);
    event Anchored(uint64 size, bytes32 root);
    event Withdrawn(uint256 indexed id, bytes32 indexed account, address to, uint256 amount);

    TestUSD private token;
    AgentrailVault private vault;
    uint256 private constant OPERATOR_KEY = 0x0BE7;
    uint256 private constant ALICE_KEY = 0xA11CE;
    address private operator;
    address private alice;
    address private constant PAYEE = address(0xFEE);
    bytes32 private constant ACCOUNT = keccak256("an ed25519 public key");

    function setUp() public {
        operator = vm.addr(OPERATOR_KEY);
        alice = vm.addr(ALICE_KEY);
        token = new TestUSD();
        vault = new AgentrailVault(address(token), operator);
        token.mint(alice, 1_000_000_000_000);
        vm.prank(alice);
        token.approve(address(vault), type(uint256).max);
        vm.warp(1_000_000);
    }

    function deposit(uint256 amount) private returns (uint256 id) {
        id = vault.nextDepositId();
        vm.prank(alice);
        vault.deposit(ACCOUNT, amount);
    }

    function authorize(uint256 key, uint256 id, bytes32 account, address to, uint256 amount, uint256 deadline)
        private
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, vault.withdrawalDigest(id, account, to, amount, deadline));
        return packed(v, r, s);
    }

    function testDepositsGetConsecutiveIdsAndEmitThem() public {
        vm.expectEmit(true, true, true, true);
        emit Deposited(1, alice, ACCOUNT, 250);
        deposit(250);
        vm.expectEmit(true, true, true, true);
        emit Deposited(2, alice, ACCOUNT, 1);
        deposit(1);
        assertEq(token.balanceOf(address(vault)), 251, "held");
        assertEq(vault.totalDeposited(), 251, "counted");
        assertEq(vault.token(), address(token), "token");
    }

    function testEmptyDepositsRevert() public {
        vm.prank(alice);
        vm.expectRevert(AgentrailVault.ZeroAmount.selector);
        vault.deposit(ACCOUNT, 0);
        vm.prank(alice);
        vm.expectRevert(AgentrailVault.ZeroAccount.selector);
        vault.deposit(bytes32(0), 1);
    }

    function testFuzz_DepositsStayWithinWhatTheLedgerCounts(uint256 first, uint256 second) public {
        first = first % (uint256(type(uint128).max) + 1);
        vm.assume(first > 0 && second > 0);
        token.mint(alice, type(uint256).max - token.totalSupply());
        deposit(first);
        uint256 room = vault.MAX_TOTAL_DEPOSITS() - first;
        vm.prank(alice);
        if (second > room) {
            vm.expectRevert(AgentrailVault.DepositsFull.selector);
            vault.deposit(ACCOUNT, second);
        } else {
            vault.deposit(ACCOUNT, second);
            assertEq(vault.totalDeposited(), first + second, "sum");
        }
        assertTrue(vault.totalDeposited() <= type(uint128).max, "u128");
    }

    function authorization(bytes32 account, uint256 amount, bytes32 salt)
        private
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
                alice,
                address(vault),
                amount,
                uint256(0),
                uint256(2_000_000),
                vault.depositNonce(account, salt)
            )
        );
        return vm.sign(ALICE_KEY, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function testDepositWithAuthorizationNeedsNoApproval() public {
        address carol = vm.addr(0xCA201);
        token.mint(carol, 10);
        (uint8 v, bytes32 r, bytes32 s) = authorization(ACCOUNT, 500, "salt");
        vm.expectEmit(true, true, true, true);
        emit Deposited(1, alice, ACCOUNT, 500);
        vm.prank(carol); // anyone may submit it: the signature names the account
        vault.depositWithAuthorization(ACCOUNT, alice, 500, 0, 2_000_000, "salt", v, r, s);
        assertEq(token.balanceOf(address(vault)), 500, "held");
        vm.expectRevert(TestUSD.AuthorizationAlreadyUsed.selector);
        vault.depositWithAuthorization(ACCOUNT, alice, 500, 0, 2_000_000, "salt", v, r, s);
    }

    function testAnAuthorizationCannotBeRedirectedToAnotherAccount() public {
        (uint8 v, bytes32 r, bytes32 s) = authorization(ACCOUNT, 500, "salt");
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        vault.depositWithAuthorization(keccak256("the thief"), alice, 500, 0, 2_000_000, "salt", v, r, s);
        vm.expectRevert(TestUSD.InvalidSignature.selector);
        vault.depositWithAuthorization(ACCOUNT, alice, 501, 0, 2_000_000, "salt", v, r, s);
    }

    function testFuzz_WithdrawalPaysOnceAgainstTheOperatorsAuthorization(uint256 id, uint256 amount) public {
        amount = amount % 1_000_000 + 1;
        deposit(1_000_000);
        bytes memory signature = authorize(OPERATOR_KEY, id, ACCOUNT, PAYEE, amount, 1_000_100);
        vm.expectEmit(true, true, true, true);
        emit Withdrawn(id, ACCOUNT, PAYEE, amount);
        vault.withdraw(id, ACCOUNT, PAYEE, amount, 1_000_100, signature);
        assertEq(token.balanceOf(PAYEE), amount, "paid");
        assertTrue(vault.withdrawn(id), "marked");
        vm.expectRevert(AgentrailVault.AlreadyWithdrawn.selector);
        vault.withdraw(id, ACCOUNT, PAYEE, amount, 1_000_100, signature);
        // A second authorization of the same id pays nothing either.
        bytes memory again = authorize(OPERATOR_KEY, id, ACCOUNT, PAYEE, amount, 1_000_200);
        vm.expectRevert(AgentrailVault.AlreadyWithdrawn.selector);
        vault.withdraw(id, ACCOUNT, PAYEE, amount, 1_000_200, again);
        assertEq(token.balanceOf(address(vault)), 1_000_000 - amount, "rest held");
        assertEq(vault.totalDeposited() - vault.totalWithdrawn(), token.balanceOf(address(vault)), "books");
    }

    function testForgedOrTamperedWithdrawalsRevert() public {
        deposit(1_000);
        bytes memory forged = authorize(ALICE_KEY, 1, ACCOUNT, alice, 1_000, 1_000_100);
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(1, ACCOUNT, alice, 1_000, 1_000_100, forged);

        bytes memory signature = authorize(OPERATOR_KEY, 1, ACCOUNT, PAYEE, 100, 1_000_100);
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(1, ACCOUNT, alice, 100, 1_000_100, signature);
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(1, ACCOUNT, PAYEE, 1_000, 1_000_100, signature);
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(2, ACCOUNT, PAYEE, 100, 1_000_100, signature);
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(1, ACCOUNT, PAYEE, 100, 1_000_101, signature);

        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(OPERATOR_KEY, vault.withdrawalDigest(1, ACCOUNT, PAYEE, 100, 1_000_100));
        vm.expectRevert(AgentrailVault.InvalidAuthorization.selector);
        vault.withdraw(1, ACCOUNT, PAYEE, 100, 1_000_100, twin(v, r, s));

        vm.warp(1_000_101);
        vm.expectRevert(AgentrailVault.AuthorizationExpired.selector);
        vault.withdraw(1, ACCOUNT, PAYEE, 100, 1_000_100, signature);
        assertEq(token.balanceOf(address(vault)), 1_000, "nothing left");
    }

    function testFuzz_AnchorsOnlyGrowAndOnlyTheOperatorAnchors(uint64 first, uint64 second, bytes32 root) public {
        vm.assume(first > 0);
        vm.expectRevert(AgentrailVault.NotOperator.selector);
        vault.anchor(first, root);
        vm.startPrank(operator);
        vm.expectEmit(true, true, true, true);
        emit Anchored(first, root);
        vault.anchor(first, root);
        if (second <= first) {
            vm.expectRevert(AgentrailVault.AnchorNotGrowing.selector);
            vault.anchor(second, keccak256("fork"));
        } else {
            vault.anchor(second, keccak256("next"));
        }
        vm.stopPrank();
        (uint64 size, bytes32 anchoredRoot) = vault.anchored();
        assertEq(size, second > first ? second : first, "size");
        assertEq(anchoredRoot, second > first ? keccak256("next") : root, "root");
    }
}
