"""Fuzzing pam-twofa's parsers and its live daemon with generated input.

`make fuzz` runs this package (`python -m fuzz`, with tests/ on the path); the smoke
tests in tests/unit/test_fuzz_smoke.py and tests/integration/test_fuzz_live.py run the
same generators with small counts inside `make test`.

It lives under tests/ rather than tools/ because it is test code through and through:
it drives the real daemon with tests/support's harness (support.daemon), its
generators are shared with the suite's smoke tests (pytest puts tests/ on the path),
and nothing of it is shipped.

The generators are structure-aware: they start from valid messages, policies and typed
codes and bend them (every JSON type in every field, huge numbers, deep nesting,
unicode of every category including lone surrogates, NUL and control characters,
overlong lines, truncated UTF-8, YAML anchors, aliases, tags, merge keys and
billion-laughs), and mix in raw random bytes.  Plain `random` with a fixed seed keeps
a run reproducible and fast enough for millions of inputs.

- values:   text, JSON values and bytes of every kind, and mutations of them
- messages: protocol requests, replies and byte streams
- policies: policy files in YAML
- typed:    what a person types at the prompt, and the hook's PAM arguments
- targets:  the offline targets: what each feeds to which function, and its oracle
- runner:   runs a target over many inputs on several processes, times each one
- live:     a real twofad on a temporary socket, and clients (root and `nobody`)
- report:   the table and the findings
"""
