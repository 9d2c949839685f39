"""`Project` -> decisions with evidence: static policy, LLM review, similarity. No HTTP, no sandboxes."""
