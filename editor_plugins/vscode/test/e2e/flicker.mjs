// Reads the after-paint samples of one suggestion's ghost text.
//
// samples: the distinct texts seen after each paint, in order ({t, text}).
// A snapshot is a text that extends everything shown before; an update is
// each snapshot; a flicker is a painted sample before the last snapshot that
// is not what was already shown (blank, cut short, a line missing).
export function analyse(samples) {
  // The last sample that grew what was shown: later ones (the suggestion
  // accepted or dismissed) are not part of the stream.
  let lastGrowth = -1;
  let b = '';
  samples.forEach((s, i) => {
    if (s.text.length > b.length && s.text.startsWith(b)) {
      b = s.text;
      lastGrowth = i;
    }
  });
  const snapshots = [];
  let flickers = 0;
  let best = '';
  samples.forEach((s, i) => {
    if (i > lastGrowth) return;
    if (s.text.length > best.length && s.text.startsWith(best)) {
      snapshots.push(s.text);
      best = s.text;
    } else if (best && s.text !== best) {
      flickers++; // blank, cut short, or a line missing for a frame
    }
  });
  return { snapshots, updates: snapshots.length, flickers };
}
