"""The experiments of Lehman et al. 2018 (safe mutations) as a grid of runs, and their report.

`scripts/reproduce.py` is the command line (`cli`); the modules each do one job:

- `grid`: the experiments as data (domains, operators, magnitudes, seeds) and their cells,
  each one `smevo.train` run with its config;
- `runner`: runs, resumes or skips each cell and writes its record;
- `records`: the record format, reading records, whether a cell is done;
- `staleness`: which records were made before their operator's arithmetic changed;
- `provenance`: the code, machine and core-seconds stamped on records;
- `status`: runs done and left and the core-hours left;
- `results`, `stats`: grouping records and the statistics that compare operators;
- `tables`, `figures`, `verdicts`, `report`: RESULTS.md, its figures and the claims' verdicts,
  written from the records alone;
- `backpropamine`, `backpropamine_report`: Backpropamine's grid maze meta-trained by A2C
  (issue 15), its runs, records and `status` lines, and BACKPROPAMINE.md from its records.

Nothing is imported here, so that reading the grid does not load matplotlib.
"""
