"""Connect: the submission pipeline (collect, group, extract, merge, curate, publish, dispatch)."""
