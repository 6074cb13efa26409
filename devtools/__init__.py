"""The repository's development tools, kept out of the runtime package `core`.

The benchmarks (`bench`, `browser_bench`, `bench_serve`), the generator of the bundled demo
dataset and the messy example (`demo`; `python -m devtools.demo`), the synthetic clinic the
benchmarks and tests import (`synth`), the clinic network on one machine (`stack`;
`python -m devtools.stack site` renders nginx's site file) and the throwaway PostgreSQL on
loopback (`local_postgres`). The running app needs none of them: it loads the committed
files of data/demo. The wheel ships `core` alone (pyproject.toml), so a clinic's install
has none of this; `python -m core bench ...` runs these from a checkout of the repository.
"""
