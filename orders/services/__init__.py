"""The order use cases, a module per area. Every public function opens and owns its transaction; a helper
named `*_locked` runs inside its caller's and says which locks it expects.

- intake: storing a received order and the control point it passes.
- lifecycle: ready, hold, backorder, release to the warehouse, cancelling an order or a line, substituting.
- allocation: plans made real (reservations, shipments), plans given back, splits approved or rejected.
- shipments: what the warehouse reports (picks, short picks, labels, shipping, delivery).
- addresses: a partner's address change and a person's correction.
- resolutions: what closing an exception means for its order, and each governed action's one service.
- idempotency: one answer per Idempotency-Key, replayed byte for byte.
- partners: the channels that send orders.
- locks and reservations: the steps the others are made of.
"""
