"""Rules beside the model: a small language over a transaction's inputs, features and score, evaluated
for a whole batch at once, and the decision (block / review / allow) they make with the model's flag.

Between ml and pipeline: it reads the model's features and the input schema; the stream services, the
CLI and the UI use it. ``syntax`` parses, ``types`` checks, ``compiler`` vectorises, ``ruleset`` holds
the rules in force and decides, ``rule`` is the topic's message, ``files`` reads rule files,
``backtest`` replays stored transactions, ``cost`` measures the evaluation against the model.
"""
