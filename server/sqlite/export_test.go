package sqlite

// DecodeChoices is decodeChoices, for tests.
var DecodeChoices = decodeChoices

// EncodeChoices is encodeChoices, for tests.
var EncodeChoices = encodeChoices
