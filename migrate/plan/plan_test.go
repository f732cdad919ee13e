package plan

import "testing"

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1024: "1.00 KB", 3500: "3.42 KB",
		150 << 10: "150 KB", 20 << 30: "20.0 GB", 5 << 40: "5.00 TB", 2048 << 40: "2048 TB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
