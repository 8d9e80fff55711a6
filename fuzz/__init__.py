"""Coverage-guided fuzzing of resdsl's front end and PyTorch code generator (docs/reliability.md).

harness.py   check_one(text): the property every input must satisfy (used by CI and long runs)
mutate.py    the spec-aware mutator (byte-, token- and line-level) and the seed corpus
run.py       `make fuzz`: atheris (libFuzzer) over the corpus, findings into fuzz/crashes/
minimize.py  shrink a finding while it keeps its signature
regressions/ minimised findings, replayed by tests/test_fuzz_corpus.py
"""
