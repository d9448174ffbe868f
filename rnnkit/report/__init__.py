"""A run's report as one self-contained HTML page (`rnnkit report`, rnnkit/stages/report.py).

    html.py       the page's pieces: escaped text, tables that scroll on a phone, figures as
                  base64 PNG data URIs, coloured tokens, the page with its inline CSS
    sections.py   each section from the data the stage gathered: settings, data, training,
                  test metrics, ROC / precision-recall, calibration, mistakes, other runs, tuning

The figures are rnnkit/plots.py's. numpy, scikit-learn and matplotlib are imported by these
modules, which only the report stage imports, inside its run: `rnnkit --help` never loads them.
"""
