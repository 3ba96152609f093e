// How much of a prose suggestion one "accept word" or "accept line" takes.
// Pure functions (no vscode import): unit-tested under plain Node.

const LINE_BREAK = /^(?:\r\n|\n|\r)/;

// The next word of `rest` together with the space before it, so one press
// accepts " sea," rather than " " and then "sea," (VS Code's own
// acceptNextWord takes two presses for a word after a space). A suggestion
// that continues on a new line yields the line break and the indentation after
// it first.
export function nextWord(rest: string): string {
  const br = LINE_BREAK.exec(rest);
  if (br) {
    const indent = /^[ \t]*/.exec(rest.slice(br[0].length))![0];
    return br[0] + indent;
  }
  const m = /^[ \t]*[^\s]*/.exec(rest)![0];
  return m.length > 0 ? m : rest.slice(0, 1);
}

// The rest of the current line of `rest` (without its line break), or, when
// `rest` starts with a line break, that break and the whole next line.
export function nextLine(rest: string): string {
  const br = LINE_BREAK.exec(rest);
  const start = br ? br[0].length : 0;
  const end = rest.slice(start).search(/\r\n|\n|\r/);
  return end < 0 ? rest : rest.slice(0, start + end);
}

// The longest prefix of a still-growing suggestion that ends at a word
// boundary (so the ghost text never shows half a word that the next token
// completes); a finished suggestion is shown whole.
export function wholeWords(text: string, done: boolean): string {
  if (done) return text;
  const m = /[\s.,;:!?)"'\u2019\u201d\]-]+(?=[^\s.,;:!?)"'\u2019\u201d\]-]*$)/.exec(text);
  if (!m) return '';
  return text.slice(0, m.index + m[0].length).replace(/\s+$/, '');
}
