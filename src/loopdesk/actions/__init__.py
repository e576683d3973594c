"""Actions agents take (return links, allowlist, notes, return state), each audited."""
