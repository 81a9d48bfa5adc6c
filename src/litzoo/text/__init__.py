"""Text domain code that datamodules and models both use (examples, vocabularies, tokenizers,
pretrained tokenizer/config loading, word vectors). It imports neither."""
