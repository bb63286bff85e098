import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseMac } from '../../server/profiles/mac.js';

test('normaliseMac accepts colons, dashes and bare hex in any case', () => {
  assert.equal(normaliseMac('52:54:00:12:34:56'), '52:54:00:12:34:56');
  assert.equal(normaliseMac('52:54:00:AB:CD:EF'), '52:54:00:ab:cd:ef');
  assert.equal(normaliseMac('52-54-00-ab-Cd-eF'), '52:54:00:ab:cd:ef');
  assert.equal(normaliseMac('525400ABCDEF'), '52:54:00:ab:cd:ef');
  assert.equal(normaliseMac(' 52:54:00:12:34:56\n'), '52:54:00:12:34:56');
});

test('normaliseMac refuses what is more likely a typo than a MAC', () => {
  for (const text of [
    '',
    '52:54:00:12:34',
    '52:54:00:12:34:56:78',
    '52:54-00:12:34:56',
    '52:54:0:12:34:56',
    '5254.0012.3456',
    '52:54:00:12:34:5g',
    '52540012345',
    '5254001234567',
    '52 54 00 12 34 56',
    '52::54:00:12:34:56',
  ]) {
    assert.equal(normaliseMac(text), undefined, text);
  }
});

test('normaliseMac is idempotent and agrees across spellings', () => {
  const canonical = '0a:1b:2c:3d:4e:5f';
  for (const text of ['0A:1B:2C:3D:4E:5F', '0a-1b-2c-3d-4e-5f', '0A1B2C3D4E5F', canonical]) {
    assert.equal(normaliseMac(text), canonical);
    assert.equal(normaliseMac(normaliseMac(text)!), canonical);
  }
});
