// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {recover} from "./Signatures.sol";

/// The ERC-20 functions the vault calls.
interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
}

/// EIP-3009's receive form, which only the payee may submit.
interface IERC3009 {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}

/// Holds the tokens behind an agentrail ledger.
///
/// Money comes in by `deposit` (after an ERC-20 approval) or by
/// `depositWithAuthorization` (an EIP-3009 authorization, no approval
/// transaction); each deposit gets the next id, and the ledger credits the
/// did:key named by `account` (its 32 Ed25519 public-key bytes) exactly once
/// per id. Money goes out by `withdraw` against the operator's EIP-712
/// authorization, at most once per withdrawal id; anyone may submit it.
/// The operator anchors the ledger's transparency log: (size, root) of a
/// checkpoint, the size only growing.
///
/// The ledger counts amounts in u128 atomic units, so the vault refuses
/// deposits that would take the sum of all deposits past 2^128 − 1: every
/// deposit it accepts is one the ledger can credit.
contract AgentrailVault {
    bytes32 public constant WITHDRAWAL_TYPEHASH =
        keccak256("Withdrawal(uint256 id,bytes32 account,address to,uint256 amount,uint256 deadline)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// The sum of deposits the ledger can count.
    uint256 public constant MAX_TOTAL_DEPOSITS = type(uint128).max;

    address private immutable TOKEN;
    /// Signs withdrawals and anchors the log.
    address public immutable operator;

    /// The id the next deposit gets; ids start at 1.
    uint256 public nextDepositId = 1;
    /// The sum of every deposit ever made.
    uint256 public totalDeposited;
    /// The sum of every withdrawal ever paid.
    uint256 public totalWithdrawn;
    /// Whether a withdrawal id was paid.
    mapping(uint256 => bool) public withdrawn;

    uint64 private anchoredSize;
    bytes32 private anchoredRoot;

    event Deposited(uint256 indexed id, address indexed from, bytes32 indexed account, uint256 amount);
    event Anchored(uint64 size, bytes32 root);
    event Withdrawn(uint256 indexed id, bytes32 indexed account, address to, uint256 amount);

    error ZeroAmount();
    error ZeroAccount();
    error ZeroAddress();
    error DepositsFull();
    error TokenTransferFailed();
    error NotOperator();
    error AnchorNotGrowing();
    error AlreadyWithdrawn();
    error AuthorizationExpired();
    error InvalidAuthorization();

    constructor(address token_, address operator_) {
        if (token_ == address(0) || operator_ == address(0)) revert ZeroAddress();
        TOKEN = token_;
        operator = operator_;
    }

    function token() external view returns (address) {
        return TOKEN;
    }

    // ----- deposits ---------------------------------------------------------

    /// Takes `amount` from the sender (who approved the vault) for `account`.
    function deposit(bytes32 account, uint256 amount) external {
        uint256 id = _recordDeposit(account, amount);
        _pull(msg.sender, amount);
        emit Deposited(id, msg.sender, account, amount);
    }

    /// The nonce an EIP-3009 authorization for `depositWithAuthorization`
    /// must carry: it commits the signature to the account, so whoever
    /// submits the authorization cannot credit another account with it.
    function depositNonce(bytes32 account, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), account, salt));
    }

    /// A deposit by an EIP-3009 `receiveWithAuthorization` from `from` to
    /// this vault, whose nonce is `depositNonce(account, salt)`.
    function depositWithAuthorization(
        bytes32 account,
        address from,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 salt,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        uint256 id = _recordDeposit(account, amount);
        _receive(from, amount, validAfter, validBefore, depositNonce(account, salt), v, r, s);
        emit Deposited(id, from, account, amount);
    }

    function _receive(
        address from,
        uint256 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) private {
        uint256 before = IERC20(TOKEN).balanceOf(address(this));
        IERC3009(TOKEN).receiveWithAuthorization(from, address(this), amount, validAfter, validBefore, nonce, v, r, s);
        if (IERC20(TOKEN).balanceOf(address(this)) != before + amount) revert TokenTransferFailed();
    }

    function _recordDeposit(bytes32 account, uint256 amount) private returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        if (account == bytes32(0)) revert ZeroAccount();
        if (amount > MAX_TOTAL_DEPOSITS - totalDeposited) revert DepositsFull();
        totalDeposited += amount;
        id = nextDepositId++;
    }

    /// Pulls exactly `amount`, for tokens that return nothing as for those
    /// that return false, and refuses fee-on-transfer tokens.
    function _pull(address from, uint256 amount) private {
        uint256 before = IERC20(TOKEN).balanceOf(address(this));
        (bool ok, bytes memory answer) =
            TOKEN.call(abi.encodeWithSelector(IERC20.transferFrom.selector, from, address(this), amount));
        if (!ok || (answer.length != 0 && !abi.decode(answer, (bool)))) revert TokenTransferFailed();
        if (IERC20(TOKEN).balanceOf(address(this)) != before + amount) revert TokenTransferFailed();
    }

    // ----- withdrawals ------------------------------------------------------

    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("AgentrailVault"), keccak256("1"), block.chainid, address(this)
            )
        );
    }

    /// The EIP-712 digest the operator signs to authorize a withdrawal.
    function withdrawalDigest(uint256 id, bytes32 account, address to, uint256 amount, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(WITHDRAWAL_TYPEHASH, id, account, to, amount, deadline));
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash));
    }

    /// Pays withdrawal `id` of `account` to `to`, as the operator authorized
    /// before `deadline`. Each id is paid at most once, whoever submits it
    /// and however many authorizations the operator signed for it.
    function withdraw(
        uint256 id,
        bytes32 account,
        address to,
        uint256 amount,
        uint256 deadline,
        bytes calldata signature
    ) external {
        if (block.timestamp > deadline) revert AuthorizationExpired();
        if (withdrawn[id]) revert AlreadyWithdrawn();
        if (to == address(0)) revert ZeroAddress();
        if (recover(withdrawalDigest(id, account, to, amount, deadline), signature) != operator) {
            revert InvalidAuthorization();
        }
        withdrawn[id] = true;
        totalWithdrawn += amount;
        (bool ok, bytes memory answer) = TOKEN.call(abi.encodeWithSelector(IERC20.transfer.selector, to, amount));
        if (!ok || (answer.length != 0 && !abi.decode(answer, (bool)))) revert TokenTransferFailed();
        emit Withdrawn(id, account, to, amount);
    }

    // ----- the log's anchor -------------------------------------------------

    /// Records a checkpoint of the ledger's log; its size must grow.
    function anchor(uint64 size, bytes32 root) external {
        if (msg.sender != operator) revert NotOperator();
        if (size <= anchoredSize) revert AnchorNotGrowing();
        anchoredSize = size;
        anchoredRoot = root;
        emit Anchored(size, root);
    }

    function anchored() external view returns (uint64 size, bytes32 root) {
        return (anchoredSize, anchoredRoot);
    }
}
