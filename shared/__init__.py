"""The contract and the kit every collections-hub service shares."""
