"""Baselines for the benchmark: the same public API built the usual ways, and a ceiling.

`sync` and `default_async` each have a front tier (the public API) and a back tier
(the SQL), talking JSON over HTTP; `ceiling` answers from memory. README.md says what
each implements, what it leaves out and why none of it is crippled.
"""
