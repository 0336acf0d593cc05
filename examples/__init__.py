"""Runnable examples of the Swarm client SDK; each module holds its handlers and a `main()`.

Start a local swarm that loads the handlers, then run the example:

    swarm up --module examples.research_swarm --module examples.cpu_batch \
             --module examples.pipeline
    python -m examples.research_swarm
"""
