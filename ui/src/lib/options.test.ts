import { describe, expect, it } from 'vitest';
import {
  addRule,
  defaultOptionsForm,
  formToOptions,
  isDefaultForm,
  modeLabel,
  optionsToForm,
  quotaToAmount,
  removeRule,
  updateRule,
  type OptionsForm,
} from './options';
import { defaultOptions } from '../test/fixtures';

function form(overrides: Partial<OptionsForm>): OptionsForm {
  return { ...defaultOptionsForm(), ...overrides };
}

function optionsOf(overrides: Partial<OptionsForm>) {
  const result = formToOptions(form(overrides));
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.options;
}

function errorsOf(overrides: Partial<OptionsForm>) {
  const result = formToOptions(form(overrides));
  if (result.ok) throw new Error('expected errors');
  return result.errors;
}

describe('the defaults', () => {
  it('send and receive, no limit, nothing filtered, usual waits', () => {
    expect(formToOptions(defaultOptionsForm())).toEqual({ ok: true, options: defaultOptions() });
    expect(isDefaultForm(defaultOptionsForm())).toBe(true);
    expect(optionsToForm(defaultOptions())).toEqual(defaultOptionsForm());
  });

  it('names the modes in words', () => {
    expect(modeLabel('send-receive')).toBe('Send and receive');
    expect(modeLabel('send-only')).toBe('Only send');
    expect(modeLabel('receive-only')).toBe('Only receive');
  });
});

describe('the limit on the shared storage', () => {
  it.each([
    ['5', 'GB', 5_000_000_000],
    ['2.5', 'GB', 2_500_000_000],
    ['2,5', 'GB', 2_500_000_000],
    [' 500 ', 'MB', 500_000_000],
    ['8', 'MB', 8_000_000],
    ['1', 'TB', 1_000_000_000_000],
  ] as const)('%j %s is %d bytes', (quotaAmount, quotaUnit, bytes) => {
    expect(optionsOf({ quotaAmount, quotaUnit }).quota).toBe(bytes);
  });

  it('is none when empty', () => {
    expect(optionsOf({ quotaAmount: '  ' }).quota).toBeNull();
  });

  it.each(['abc', '-5', '5 GB', '1e9', '1.2.3'])('refuses %j', (quotaAmount) => {
    expect(errorsOf({ quotaAmount }).quota).toMatch(/as a number/);
  });

  it('refuses less than 8 MB', () => {
    expect(errorsOf({ quotaAmount: '7', quotaUnit: 'MB' }).quota).toBe('The limit must be at least 8 MB.');
    expect(errorsOf({ quotaAmount: '0', quotaUnit: 'TB' }).quota).toBe('The limit must be at least 8 MB.');
  });

  it('shows a size in the largest unit that is exact', () => {
    expect(quotaToAmount(5_000_000_000)).toEqual({ amount: '5', unit: 'GB' });
    expect(quotaToAmount(1_500_000_000)).toEqual({ amount: '1.5', unit: 'GB' });
    expect(quotaToAmount(2_000_000_000_000)).toEqual({ amount: '2', unit: 'TB' });
    expect(quotaToAmount(750_000_000)).toEqual({ amount: '750', unit: 'MB' });
    expect(quotaToAmount(1_234_567_891)).toEqual({ amount: '1234.567891', unit: 'MB' });
  });
});

describe('patterns and rules', () => {
  it('takes one pattern a line, without blank lines or surrounding spaces', () => {
    const options = optionsOf({ include: 'Finance/\n\n  *.pdf  \r\nSales/', exclude: '*.log\n' });
    expect(options.include).toEqual(['Finance/', '*.pdf', 'Sales/']);
    expect(options.exclude).toEqual(['*.log']);
  });

  it('adds, edits and removes rule rows, keeping their keys', () => {
    let f = addRule(addRule(defaultOptionsForm()));
    const [first, second] = f.rules;
    expect(first?.mode).toBe('ignore');
    expect(first?.id).not.toBe(second?.id);
    f = updateRule(f, first?.id ?? 0, { path: 'Sales/', mode: 'send-only' });
    f = updateRule(f, second?.id ?? 0, { path: 'Sales/archive/' });
    expect(optionsOf(f).rules).toEqual([
      { path: 'Sales/', mode: 'send-only' },
      { path: 'Sales/archive/', mode: 'ignore' },
    ]);
    f = removeRule(f, first?.id ?? 0);
    expect(f.rules.map((rule) => rule.id)).toEqual([second?.id]);
    expect(isDefaultForm(f)).toBe(false);
  });

  it('leaves out rows without a pattern', () => {
    const f = addRule(defaultOptionsForm());
    expect(optionsOf(f).rules).toEqual([]);
    expect(isDefaultForm(f)).toBe(true);
  });
});

describe('how often to check for changes', () => {
  it('takes seconds, with a comma or a dot', () => {
    const options = optionsOf({ pollMin: '5', pollMax: '120,5' });
    expect(options.pollMinSeconds).toBe(5);
    expect(options.pollMaxSeconds).toBe(120.5);
  });

  it('refuses what is not a number of seconds', () => {
    expect(errorsOf({ pollMin: 'often' }).pollMin).toMatch(/number of seconds/);
    expect(errorsOf({ pollMax: '0' }).pollMax).toMatch(/number of seconds/);
  });

  it('refuses a shortest wait longer than the longest, the defaults included', () => {
    expect(errorsOf({ pollMin: '60', pollMax: '30' }).pollMin).toBe(
      'The shortest wait (60 s) is longer than the longest (30 s).',
    );
    expect(errorsOf({ pollMin: '120' }).pollMin).toMatch(/longest \(90 s\)/);
    expect(errorsOf({ pollMax: '1' }).pollMax).toMatch(/shortest wait \(2 s\)/);
  });
});

describe('optionsToForm', () => {
  it('round-trips every option', () => {
    const options = defaultOptions({
      mode: 'receive-only',
      quota: 2_500_000_000,
      include: ['Finance/', '*.pdf'],
      exclude: ['*.log'],
      rules: [
        { path: 'Sales/', mode: 'send-only' },
        { path: 'Sales/archive/', mode: 'ignore' },
      ],
      pollMinSeconds: 5,
      pollMaxSeconds: 300,
    });
    const f = optionsToForm(options);
    expect(f.quotaAmount).toBe('2.5');
    expect(f.quotaUnit).toBe('GB');
    expect(f.include).toBe('Finance/\n*.pdf');
    expect(f.pollMin).toBe('5');
    expect(formToOptions(f)).toEqual({ ok: true, options });
  });
});
