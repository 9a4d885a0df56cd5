// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Simple: the account-book contract of Hyperledger Caliper's "simple"
/// benchmark (open, query, transfer), written for hansa bench so its figures
/// can be set beside published Caliper ones.
/// @notice Accounts are named by strings, as in Caliper. transfer reverts
/// with "insufficient balance" when the payer cannot cover the amount.
contract Simple {
    mapping(string => uint256) private balances;

    /// Opens (or resets) the account named id with amount.
    function open(string calldata id, uint256 amount) external {
        balances[id] = amount;
    }

    /// Returns the balance of the account named id.
    function query(string calldata id) external view returns (uint256) {
        return balances[id];
    }

    /// Moves amount from the account named from to the account named to.
    function transfer(string calldata from, string calldata to, uint256 amount) external {
        uint256 have = balances[from];
        require(have >= amount, "insufficient balance");
        unchecked {
            balances[from] = have - amount;
        }
        balances[to] += amount;
    }
}
