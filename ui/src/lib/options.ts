// The "Advanced options" form of a synced folder, used by the set-up wizard
// and by a folder's Settings: the form's fields as typed, and the conversion
// to and from the RepositoryOptions the commands take.
import type { RepositoryOptions, RuleMode, SyncMode } from './api';

export type SizeUnit = 'MB' | 'GB' | 'TB';

export const SIZE_UNITS: Record<SizeUnit, number> = {
  MB: 1_000_000,
  GB: 1_000_000_000,
  TB: 1_000_000_000_000,
};

/** The smallest limit the desktop app accepts: 8 MB. */
export const MIN_QUOTA = 8_000_000;
export const DEFAULT_POLL_MIN = 2;
export const DEFAULT_POLL_MAX = 90;

export const MODE_CHOICES: readonly { mode: SyncMode; label: string }[] = [
  { mode: 'send-receive', label: 'Send and receive' },
  { mode: 'send-only', label: 'Only send' },
  { mode: 'receive-only', label: 'Only receive' },
];

export const RULE_MODE_CHOICES: readonly { mode: RuleMode; label: string }[] = [
  { mode: 'send-receive', label: 'Sync both ways' },
  { mode: 'send-only', label: 'Only send' },
  { mode: 'receive-only', label: 'Only receive' },
  { mode: 'ignore', label: 'Don’t sync' },
];

export function modeLabel(mode: SyncMode): string {
  return MODE_CHOICES.find((choice) => choice.mode === mode)?.label ?? mode;
}

export interface RuleRow {
  /** Stable key for the table row, so focus stays put when another row goes. */
  id: number;
  path: string;
  mode: RuleMode;
}

export interface OptionsForm {
  mode: SyncMode;
  /** Empty: no limit. */
  quotaAmount: string;
  quotaUnit: SizeUnit;
  /** One pattern a line. */
  include: string;
  exclude: string;
  rules: RuleRow[];
  /** Seconds; empty: the default. */
  pollMin: string;
  pollMax: string;
}

export interface OptionsErrors {
  quota?: string;
  pollMin?: string;
  pollMax?: string;
}

let nextRuleId = 1;

function ruleRow(path: string, mode: RuleMode): RuleRow {
  const id = nextRuleId;
  nextRuleId += 1;
  return { id, path, mode };
}

export function defaultOptionsForm(): OptionsForm {
  return {
    mode: 'send-receive',
    quotaAmount: '',
    quotaUnit: 'GB',
    include: '',
    exclude: '',
    rules: [],
    pollMin: '',
    pollMax: '',
  };
}

/** Writes a number without float noise: 1.5, not 1.5000000000000002. */
function plainNumber(value: number): string {
  return String(Number(value.toPrecision(12)));
}

/** A size in the largest unit that shows it exactly (to three decimals). */
export function quotaToAmount(bytes: number): { amount: string; unit: SizeUnit } {
  for (const unit of ['TB', 'GB'] as const) {
    const size = SIZE_UNITS[unit];
    if (bytes >= size && bytes % (size / 1000) === 0) {
      return { amount: plainNumber(bytes / size), unit };
    }
  }
  return { amount: plainNumber(bytes / SIZE_UNITS.MB), unit: 'MB' };
}

export function optionsToForm(options: RepositoryOptions): OptionsForm {
  const quota = options.quota === null ? null : quotaToAmount(options.quota);
  return {
    mode: options.mode,
    quotaAmount: quota?.amount ?? '',
    quotaUnit: quota?.unit ?? 'GB',
    include: options.include.join('\n'),
    exclude: options.exclude.join('\n'),
    rules: options.rules.map((rule) => ruleRow(rule.path, rule.mode)),
    pollMin: options.pollMinSeconds === null ? '' : plainNumber(options.pollMinSeconds),
    pollMax: options.pollMaxSeconds === null ? '' : plainNumber(options.pollMaxSeconds),
  };
}

/** A positive number typed with a dot or a comma; null when empty, NaN when not a number. */
function parseAmount(text: string): number | null {
  const value = text.trim().replace(',', '.');
  if (value === '') return null;
  return /^\d+(\.\d+)?$|^\.\d+$/.test(value) ? Number(value) : Number.NaN;
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

export type OptionsResult = { ok: true; options: RepositoryOptions } | { ok: false; errors: OptionsErrors };

/** Checks the form and turns it into options; or says what to fix. Rule rows without a pattern are left out. */
export function formToOptions(form: OptionsForm): OptionsResult {
  const errors: OptionsErrors = {};

  let quota: number | null = null;
  const amount = parseAmount(form.quotaAmount);
  if (amount !== null) {
    if (Number.isNaN(amount)) {
      errors.quota = 'Write the limit as a number, like 5 or 2.5, or leave it empty for no limit.';
    } else {
      quota = Math.round(amount * SIZE_UNITS[form.quotaUnit]);
      if (quota < MIN_QUOTA) {
        errors.quota = 'The limit must be at least 8 MB.';
      }
    }
  }

  const seconds = (text: string, key: 'pollMin' | 'pollMax'): number | null => {
    const value = parseAmount(text);
    if (value !== null && (Number.isNaN(value) || value < 0.1)) {
      errors[key] = 'Write a number of seconds, like 5, or leave it empty for the usual value.';
      return null;
    }
    return value;
  };
  const pollMin = seconds(form.pollMin, 'pollMin');
  const pollMax = seconds(form.pollMax, 'pollMax');
  if (errors.pollMin === undefined && errors.pollMax === undefined) {
    const min = pollMin ?? DEFAULT_POLL_MIN;
    const max = pollMax ?? DEFAULT_POLL_MAX;
    if (min > max) {
      const message = `The shortest wait (${plainNumber(min)} s) is longer than the longest (${plainNumber(max)} s).`;
      if (pollMin !== null) errors.pollMin = message;
      else errors.pollMax = message;
    }
  }

  if (Object.keys(errors).length > 0) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    options: {
      mode: form.mode,
      quota,
      include: lines(form.include),
      exclude: lines(form.exclude),
      rules: form.rules
        .map((rule) => ({ path: rule.path.trim(), mode: rule.mode }))
        .filter((rule) => rule.path !== ''),
      pollMinSeconds: pollMin,
      pollMaxSeconds: pollMax,
    },
  };
}

export function addRule(form: OptionsForm): OptionsForm {
  return { ...form, rules: [...form.rules, ruleRow('', 'ignore')] };
}

export function removeRule(form: OptionsForm, id: number): OptionsForm {
  return { ...form, rules: form.rules.filter((rule) => rule.id !== id) };
}

export function updateRule(form: OptionsForm, id: number, change: Partial<Omit<RuleRow, 'id'>>): OptionsForm {
  return { ...form, rules: form.rules.map((rule) => (rule.id === id ? { ...rule, ...change } : rule)) };
}

/** True when the form differs from the defaults, i.e. someone typed something. */
export function isDefaultForm(form: OptionsForm): boolean {
  const defaults = defaultOptionsForm();
  return (
    form.mode === defaults.mode &&
    form.quotaAmount.trim() === '' &&
    form.include.trim() === '' &&
    form.exclude.trim() === '' &&
    form.rules.every((rule) => rule.path.trim() === '') &&
    form.pollMin.trim() === '' &&
    form.pollMax.trim() === ''
  );
}
