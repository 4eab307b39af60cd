package postgres

// SetBeforeAdvance has f run in each integration pass of db between
// computing the pass and committing it; tests make integrators race with it.
func (db *DB) SetBeforeAdvance(f func()) { db.tl.Load().beforeAdvance = f }
