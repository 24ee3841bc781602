// Package hashring maps keys to members by consistent hashing with virtual
// nodes, so that every process that knows the same members computes the same
// placement, and a membership change moves only the keys it must: adding a
// member moves keys only to it, removing one moves only its keys.
//
// # Placement contract
//
// A member of weight w has vnodes×w points on a 64-bit ring, at
// XXH3(name + "#" + i) for i = 0 … vnodes×w−1 (XXH3-64 with seed 0, see
// Hash); a key sits at XXH3(key) and belongs to the member owning the first point at
// or after it, wrapping around; equal points order by member name. Nothing
// else — not the order members were added, not the process, not the Go
// version — enters the placement, and golden vectors in the tests pin it.
// DefaultVirtualNodes (2048) is part of the contract too: processes that
// route the same keys must use the same value.
//
// # Costs
//
// Lookups read an immutable snapshot through an atomic pointer: no lock, no
// allocation, and constant work whatever the number of virtual nodes, thanks
// to a bucket index in front of the sorted points that keeps exact ring
// semantics. For rings of up to 128 members the index has four two-byte
// buckets per point, and a lookup resolves from two adjacent entries without
// a data-dependent branch in about 98% of cases; buckets of two or three
// points resolve from one 16-byte side entry, and under 0.1% of lookups scan
// the sorted points. What a big ring costs is memory and cache: about 29
// bytes per point (2048 points per member by default: 0.65 MiB for 10
// members, 5.7 MiB for 100), and a 100-member ring's 2 MiB index does not fit
// a core's L2 beside everything else, so its lookups cost about one L3 hit
// more than a small ring's. WithVirtualNodes trades balance for that memory.
// A membership change builds a new snapshot, merging the unchanged members'
// points with the new ones, in milliseconds for tens of members.
// docs/benchmarks/hashring.md has the measurements and the comparison with
// other Go rings.
//
// # Routing with fallbacks
//
// LocateN (or AppendN, which allocates nothing) lists distinct members in
// ring order: the owner first, then where to go if it is down. Every process
// computes the same list, so retries of one key converge on the same
// fallback, and when a member leaves each list only loses that member. This
// is how a callback client routes by order id (see the Example).
//
// # Bounded loads
//
// Bounded adds the bounded-loads rule of Mirrokni, Thorup and Zadimoghaddam
// (2016): no member holds more than ⌈c × its fair share⌉ of the keys placed.
// It is stateful, so it is for a caller that owns every placement, not for
// replicas that must agree without talking.
package hashring
