import { describe, expect, it } from 'vitest';
import { passphraseBits, passphraseStrength, strengthLevel, strengthText } from './passphrase';

describe('passphraseStrength', () => {
  it.each([
    ['', 'empty'],
    ['a', 'weak'],
    ['password', 'weak'],
    ['Pa5$', 'weak'],
    ['password1', 'weak'],
    ['aaaaaaaaaaaaaaaaaaaaaaaa', 'weak'],
    ['abababababababababababab', 'weak'],
    ['Summer2024', 'fair'],
    ['officefile', 'weak'],
    ['officefilesok', 'fair'],
    ['Tr0ub4dor&3', 'strong'],
    ['correct horse battery staple', 'strong'],
    ['test passphrase', 'strong'],
  ] as const)('%j is %s', (passphrase, strength) => {
    expect(passphraseStrength(passphrase)).toBe(strength);
  });

  it('counts characters, not UTF-16 units, and values every kind of character', () => {
    expect(passphraseBits('')).toBe(0);
    expect(passphraseBits('abcdefgh')).toBeCloseTo(8 * Math.log2(26));
    expect(passphraseBits('abcdEFGH')).toBeCloseTo(8 * Math.log2(52));
    expect(passphraseBits('abcd1234')).toBeCloseTo(8 * Math.log2(36));
    expect(passphraseBits('ab cd!?é')).toBeCloseTo(8 * Math.log2(59));
    expect(passphraseBits('😀😁😂😃')).toBeCloseTo(4 * Math.log2(33));
  });

  it('grows with length', () => {
    expect(passphraseBits('abcdefghijkl')).toBeGreaterThan(passphraseBits('abcdefgh'));
  });
});

describe('strengthText and strengthLevel', () => {
  it('says the strength in words', () => {
    expect(strengthText('empty')).toBe('');
    expect(strengthText('weak')).toMatch(/^Weak/);
    expect(strengthText('fair')).toMatch(/^Fair/);
    expect(strengthText('strong')).toBe('Strong.');
  });

  it('maps to a meter from 0 to 3', () => {
    expect(['empty', 'weak', 'fair', 'strong'].map((s) => strengthLevel(s as never))).toEqual([0, 1, 2, 3]);
  });
});
