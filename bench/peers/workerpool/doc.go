// Package workerpool holds benchmarks only: orderflow's workerpool against
// panjf2000/ants/v2, alitto/pond/v2 and a plain buffered channel drained by N
// goroutines (the floor any pool is measured against), all running the same
// calibrated busy task on the same number of workers.
package workerpool
