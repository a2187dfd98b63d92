"""A fuzz harness for medview's DICOM input: mutated series folders, isolated runs, classes.

``bases`` prepares the clean source series from the shared data, ``mutate`` builds seeded
corpus folders from them (recording which files stayed intact), ``isolate`` runs one case in
a forked child under a wall-time and memory limit, ``tools`` holds the runners (medview's
index / series / convert / load, dcm2niix, SimpleITK, a pydicom loop) and the intact-slice
check, ``harness`` ties them together. ``test_fuzz_smoke.py`` runs a small seeded corpus in
CI; ``benchmarks/fuzz.py`` a large one for all four tools.
"""
