"""What Revaer's tests and benchmarks share: drivers of real BitTorrent clients and the torrents they are given.

Nothing in the product imports this package.
"""
