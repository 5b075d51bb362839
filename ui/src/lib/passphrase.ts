// A simple estimate of how hard a passphrase is to guess: its length and the
// kinds of characters in it, with repeated characters counting little. It is
// meant to steer people towards long passphrases, not to measure them exactly.

export type Strength = 'empty' | 'weak' | 'fair' | 'strong';

/** Shorter passphrases are refused whatever they hold. */
export const MIN_PASSPHRASE_LENGTH = 8;

const FAIR_BITS = 50;
const STRONG_BITS = 70;

/** Rough guessing difficulty in bits. */
export function passphraseBits(passphrase: string): number {
  const chars = [...passphrase];
  if (chars.length === 0) return 0;
  let pool = 0;
  if (chars.some((c) => /[a-z]/.test(c))) pool += 26;
  if (chars.some((c) => /[A-Z]/.test(c))) pool += 26;
  if (chars.some((c) => /[0-9]/.test(c))) pool += 10;
  if (chars.some((c) => /[^a-zA-Z0-9]/.test(c))) pool += 33;
  // "aaaaaaaa" or "abababab" is no better than a couple of characters.
  const distinct = new Set(chars).size;
  const effectiveLength = Math.min(chars.length, distinct * 2);
  return effectiveLength * Math.log2(pool);
}

export function passphraseStrength(passphrase: string): Strength {
  if (passphrase === '') return 'empty';
  const bits = passphraseBits(passphrase);
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH || bits < FAIR_BITS) return 'weak';
  return bits < STRONG_BITS ? 'fair' : 'strong';
}

/** The strength in words, for the hint under the field. */
export function strengthText(strength: Strength): string {
  switch (strength) {
    case 'empty':
      return '';
    case 'weak':
      return 'Weak: easy to guess. Make it longer, for example four or five unrelated words.';
    case 'fair':
      return 'Fair. A few more words would make it strong.';
    case 'strong':
      return 'Strong.';
  }
}

/** The value of a <meter> from 0 to 3. */
export function strengthLevel(strength: Strength): number {
  return { empty: 0, weak: 1, fair: 2, strong: 3 }[strength];
}
