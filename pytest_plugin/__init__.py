"""pytest plugin for the fake registry (fixtures, markers, contract suite)."""
