"""The `nst` command line: the top of the stack. It imports every layer; nothing imports it."""
