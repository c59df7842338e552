"""The safety path of a chat request: screen the input, generate, moderate the output, report.

Cheap checks (normalisation, deny patterns) run here in the ingress process; only the model-holding layers
cost a hop. Every non-allow decision is recorded as an incident, and review-band items go to the queue.

One module per step, each importing only those listed before it: `translate` (the request in the Generator's
terms; ids and tool-call deltas for the response), `records` (decision records: incidents, reputation, review
items, held answers), `usage` (tokens spent, time to first text), `safety` (the input screen, the Moderator's
verdicts, the tool-call gate), `turn` (one request's state, and the settlement of its tokens, once), `complete`
(an answer delivered whole), `stream` (a moderated stream) and `answer` (the router's one call: the checks, then
one of the two).
"""
