package query

import "testing"

func TestLike(t *testing.T) {
	tests := []struct {
		s, pat, esc string
		want        bool
	}{
		{"", "", "", true},
		{"", "%", "", true},
		{"a", "", "", false},
		{"abc", "abc", "", true},
		{"abc", "ab", "", false},
		{"aaa", "%a%a%a%", "", true},
		{"aa", "%a%a%a%", "", false},
		{"abcabc", "%bc", "", true},
		{"ab", "%%b", "", true},
		{"a%b", "a!%b", "!", true},
		{"axb", "a!%b", "!", false},
		{"a!b", "a!!b", "!", true},
		{"[x]", "[[]x]", "", true},
		{"[x", "[x", "", true}, // an unclosed bracket is a literal
		{"b", "[a-c]", "", true},
		{"d", "[a-c]", "", false},
		{"d", "[^a-c]", "", true},
		{"]", "[]]", "", true},
		{"é", "_", "", true},
		{"😀x", "_x", "", true},
	}
	for _, tt := range tests {
		if got := like(tt.s, tt.pat, tt.esc); got != tt.want {
			t.Errorf("like(%q, %q, %q) = %v", tt.s, tt.pat, tt.esc, got)
		}
	}
}
