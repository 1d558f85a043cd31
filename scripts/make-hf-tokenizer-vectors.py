#!/usr/bin/env python3
"""Test vectors for Longspan's tokenizer.json reader, written by Hugging Face's own `tokenizers` library.

Trains small BPE tokenizers (vocabulary 800, on slices of ../shared/data's novels and random text) in the
configurations real llama / mistral / qwen tokenizer.json files use — SentencePiece-style with byte fallback
(legacy Prepend+Replace normalizer, or a Metaspace pre-tokenizer and decoder), GPT-2 byte-level, Llama 3 and
Tekken regex splits, NFC / NFKC + Lowercase normalizers, Digits, Split with every behaviour, added tokens with
lstrip / rstrip / single_word / normalized — saves each as NAME.json and writes NAME.vectors.jsonl beside it:
{"text": ..., "ids": [...]} (encode, no special tokens added) and {"ids": [...], "decoded": ...} (decode,
special tokens kept), computed by the library. HfTokenizerVectorsTest checks Longspan against them.

    pip install tokenizers            # 0.23.2 made the committed files
    python3 scripts/make-hf-tokenizer-vectors.py [OUT_DIR]   # default longspan-core/src/test/resources/hf-tokenizers
"""
import glob, json, os, random, sys
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, normalizers, decoders, Regex, AddedToken
import tokenizers

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, 'longspan-core/src/test/resources/hf-tokenizers')
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
novels = [open(f, encoding='utf-8').read() for f in sorted(glob.glob(os.path.join(root, '../shared/data/text/gutenberg/*.txt')))[:4]]
if not novels: sys.exit('make-hf-tokenizer-vectors.py: ../shared/data/text/gutenberg/*.txt not found')

RANGES = [(0x20, 0x7e), (0xa0, 0xff), (0x370, 0x3ff), (0x400, 0x4ff), (0x4e00, 0x9fff), (0x3040, 0x30ff), (0x900, 0x97f),
          (0x300, 0x36f), (0x2000, 0x200f), (0x2028, 0x202f), (0x3000, 0x3000), (0x85, 0x85), (0x1, 0x1f), (0x1f300, 0x1f64f),
          (0x1d400, 0x1d7ff), (0xff01, 0xff5e), (0x2150, 0x218b), (0xb2, 0xb3), (0x660, 0x669), (0x1e030, 0x1e06d), (0x105c0, 0x105f3)]
WORDS = "the The THE of and to a in that is was he for it with as his on be at by I this had not are but from or have an they which one you were her all she there would".split()
ADDED = ["ÉLAN", "abc", "ABC", "ＡＢＣ", "hello", "<sep>", "FIX", "ﬁxed", "<|im_start|>", "<|im_end|>", "[TOOL]", "hello world", "cat", "Élan", "élan", "<|user|>", "<|end|>", "the sea", "<s>", "</s>", "<unk>"]

def random_text():
    k = rng.random()
    if k < 0.3:
        return ''.join(chr(rng.randint(*rng.choice(RANGES))) for _ in range(rng.randint(1, 40)))
    if k < 0.6:
        parts = []
        for _ in range(rng.randint(1, 20)):
            w = rng.choice(WORDS)
            r = rng.random()
            if r < 0.2: w = w.upper()
            elif r < 0.3: w = str(rng.randint(0, 10 ** rng.randint(1, 9)))
            elif r < 0.4: w = chr(rng.randint(*rng.choice(RANGES)))
            elif r < 0.5: w += rng.choice([".", ",", "!", "'s", "n't", ";", "--", "\u00a0", "\u202f"])
            parts.append(w + rng.choice([" ", " ", " ", "  ", "\n", "\t", "\u3000", "\u00a0"]))
        return ''.join(parts)
    if k < 0.85:
        t = rng.choice(novels); s = rng.randint(0, len(t) - 200)
        return t[s:s + rng.randint(1, 160)]
    return ''.join(rng.choice(ADDED + [" ", "  ", "\n", "x", "cats", "a cat b", "\u0085", "_", "\u0901"]) for _ in range(rng.randint(1, 8)))

# Unicode whitespace and word characters beside added tokens, number characters, final sigma, new code points
EDGES = ["cat\u0901 cat_ _cat cat² catⅫ cat\u0301 cat- écat", "a\u0085[TOOL]\u0085b x\u00a0[TOOL]\u3000y \u001c[TOOL]\u001f z\u2007[TOOL]\u202f",
         "¹½٨Ⅸ 12 ²³ ⅷ", "ΣΑΣ ΟΔΟΣ İstanbul", "\U0001E035\U000105D2\u0307 \u1E9E", "  ▁x▁ the sea\n<|end|>  \n"]

def corpus():
    for t in novels:
        for para in t[:200000].split('\n\n'): yield para
    for _ in range(1000): yield random_text()

TEKKEN = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SP_DECODER = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
LEGACY = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])

def build(name, normalizer=None, pre=None, decoder=None, byte_fallback=False, byte_level=False, limit_alphabet=None, ignore_merges=False, added=(), fuse_unk=None):
    tok = Tokenizer(models.BPE(unk_token=None if byte_level else "<unk>", byte_fallback=byte_fallback,
                               fuse_unk=byte_fallback if fuse_unk is None else fuse_unk, ignore_merges=ignore_merges))
    if normalizer: tok.normalizer = normalizer
    if pre: tok.pre_tokenizer = pre
    if decoder: tok.decoder = decoder
    kw = dict(vocab_size=800, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    if byte_level: kw['initial_alphabet'] = pre_tokenizers.ByteLevel.alphabet()
    if limit_alphabet: kw['limit_alphabet'] = limit_alphabet
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(**kw))
    path = os.path.join(out, name + '.json')
    tok.save(path)
    if byte_fallback:   # SentencePiece-converted files hold the 256 byte tokens in the vocabulary
        j = json.load(open(path, encoding='utf-8'))
        v = j['model']['vocab']; n = max(v.values()) + 1
        for b in range(256):
            if '<0x%02X>' % b not in v: v['<0x%02X>' % b] = n; n += 1
        json.dump(j, open(path, 'w', encoding='utf-8'), ensure_ascii=False)
        tok = Tokenizer.from_file(path)
    for a in added: tok.add_special_tokens([a]) if a.special else tok.add_tokens([a])
    tok.save(path)
    texts = EDGES + [random_text() for _ in range(250 - len(EDGES))]
    size = tok.get_vocab_size(with_added_tokens=True)
    with open(os.path.join(out, name + '.vectors.jsonl'), 'w', encoding='utf-8') as f:
        encoded = []
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False).ids
            encoded.append(ids)
            f.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=False) + '\n')
        for ids in encoded[:60] + [[rng.randrange(size) for _ in range(rng.randint(1, 12))] for _ in range(60)]:
            f.write(json.dumps({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}, ensure_ascii=False) + '\n')
    print(name, file=sys.stderr)

build('llama2-legacy', normalizer=LEGACY, decoder=SP_DECODER, byte_fallback=True, limit_alphabet=150,
      added=[AddedToken("<|user|>", special=True), AddedToken("<|end|>", special=True, rstrip=True), AddedToken("the sea", special=False, normalized=False)])
build('llama2-metaspace', pre=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
      decoder=decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False), byte_fallback=True, limit_alphabet=150)
build('nfkc-lowercase-metaspace', normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
      pre=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
      decoder=decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True), byte_fallback=True, limit_alphabet=200)
build('gpt2-prefix-space', pre=pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True), decoder=decoders.ByteLevel(), byte_level=True,
      added=[AddedToken("<|im_start|>", special=True), AddedToken("<|im_end|>", special=True), AddedToken("[TOOL]", special=True, lstrip=True, rstrip=True),
             AddedToken("hello world", special=False), AddedToken("cat", special=False, single_word=True), AddedToken("Élan", special=False, normalized=True)])
build('tekken', pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(TEKKEN), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
      decoder=decoders.ByteLevel(), byte_level=True)
build('llama3-nfc', normalizer=normalizers.NFC(), pre=pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), decoder=decoders.ByteLevel(), byte_level=True, ignore_merges=True)
build('digits-split-behaviours', pre=pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
      pre_tokenizers.Split(Regex(r"[.,;:!?]"), behavior="merged_with_previous"), pre_tokenizers.Split(Regex(r"\s+"), behavior="merged_with_next"),
      pre_tokenizers.Split(Regex(r"\p{P}"), behavior="contiguous"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]),
      decoder=decoders.ByteLevel(), byte_level=True)
build('split-removed-inverted', pre=pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=False),
      pre_tokenizers.Split(Regex(r"\p{L}+|\p{N}+"), behavior="removed", invert=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
      decoder=decoders.ByteLevel(), byte_level=True)
build('whitespace-nfd-strip', normalizer=normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Strip(True, True),
      normalizers.Replace(Regex(r"\s+"), " ")]), pre=pre_tokenizers.Whitespace(), limit_alphabet=120)
build('punctuation-whitespacesplit', pre=pre_tokenizers.Sequence([pre_tokenizers.Punctuation("contiguous"), pre_tokenizers.WhitespaceSplit(),
      pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)]), decoder=decoders.ByteLevel(), byte_level=True)
build('chardelimiter-punctuation', pre=pre_tokenizers.Sequence([pre_tokenizers.CharDelimiterSplit("\n"), pre_tokenizers.Punctuation(),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), decoder=decoders.ByteLevel(), byte_level=True)
build('unk-fused-metaspace-split', pre=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
      decoder=decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True), limit_alphabet=80, fuse_unk=True)
build('nfkc-lowercase-added', normalizer=normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
      pre=pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), decoder=decoders.ByteLevel(), byte_level=True,
      added=[AddedToken("Élan", special=False, normalized=True), AddedToken("ＡＢＣ", special=False, normalized=True),
             AddedToken("Hello", special=False, normalized=False), AddedToken("<SEP>", special=True, normalized=True),
             AddedToken("ﬁx", special=False, normalized=True, single_word=True)])
with open(os.path.join(out, 'README.md'), 'w') as f:
    f.write("Tokenizers and their encodings/decodings written by Hugging Face `tokenizers` %s with "
            "`scripts/make-hf-tokenizer-vectors.py` (see its header); checked by HfTokenizerVectorsTest.\n" % tokenizers.__version__)
