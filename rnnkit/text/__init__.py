"""Text processing: cleaning, the word tokenizer (gensim vocabulary) and the BPE tokenizer.

Both tokenizers share `Tokenizer` (rnnkit.text.base): the Hugging Face-like interface
(`encode` -> input_ids + attention_mask, `decode`, `tokenize`) and the JSON file format.
"""
