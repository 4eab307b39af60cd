package sqlite

// DecodeChoices is decodeChoices, for tests.
var DecodeChoices = decodeChoices
