package config

// Rules loads src and returns the rule of each problem found: a name from
// CrossFieldRules, or "" for a check the schema makes too. ok is true when
// the file loads.
func Rules(src []byte) (rules []string, ok bool) {
	_, probs := load(src)
	for _, p := range probs {
		rules = append(rules, p.rule)
	}
	return rules, len(probs) == 0
}
