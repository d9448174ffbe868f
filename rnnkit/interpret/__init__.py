"""Why a trained run labels a text as it does (`rnnkit explain`).

    attributions.py   layer integrated gradients (captum) on the model's token embeddings:
                      one number per token, summing to f(text) - f(baseline)
    ngram.py          the ngram model with its bags opened (one row per token and bigram)
    words.py          tokens -> the words they spell (BPE pieces joined)
    render.py         the terminal view (rich) and a self-contained HTML page

`rnnkit explain` (stages/explain.py) imports these inside its run, so that torch and captum
stay out of `rnnkit --help`.
"""
