import { describe, expect, it } from 'vitest';
import { isJson } from './ez.js';

describe('isJson', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['Application/JSON;charset=UTF-8', true],
    ['application/json ; charset=utf-8', true],
    ['application/jsonx', false],
    ['application/json-patch+json', false],
    ['application/x-www-form-urlencoded', false],
    ['text/json', false],
    ['', false],
  ])('%j → %s', (type, json) => {
    expect(isJson(type)).toBe(json);
  });
});
