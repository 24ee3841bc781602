package synth_test

// goldenSeed1 is the start of the seed-1 stream, the training data of the
// checked-in v3 weights. If it changes, retrain (go run ./risk/cmd/train
// -seed 1 -n 200000 > risk/v3_weights.json), update docs/models.md, then
// update this.
var goldenSeed1 = []string{
	"ord_s1_1 u13971 2026-01-01T00:34:33.978557646Z 13012 velocity_burst true",
	"ord_s1_2 u13971 2026-01-01T00:40:00.35189553Z 6430 velocity_burst true",
	"ord_s1_3 u13971 2026-01-01T00:44:27.762520778Z 7885 velocity_burst true",
	"ord_s1_4 u3369 2026-01-01T00:44:31.369130559Z 5178 legit false",
	"ord_s1_5 u18515 2026-01-01T00:48:06.737148151Z 17858 legit false",
	"ord_s1_6 u13971 2026-01-01T00:54:52.664078786Z 14671 velocity_burst true",
}
