"""Past one GPU host: Platform's validators train, PRISM trusts no single one.

- `signing`: the signed envelope a validator sends (sr25519, nonce, timestamp, bound to the work
  unit and the archive hash) and its verification.
- `units`: open, claim, expire and close work units; accept a result once.
- `agreement`: independent results → agreed / waiting / disagreed, with the odd ones out.
- `stage`: the pipeline's train stage when validators train.
- `dispatch`: the validator side, imported by Platform as `prism_challenge.validator_dispatch`.
"""
