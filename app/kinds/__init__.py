"""One folder per kind: `app/kinds/<kind>/` holds its typed contract (`signature.py`), its
request side (`request.py`: a typed request → job inputs and a frozen JobMeta), its graph side
(`graph.py`: what the worker checks and runs) and its response side (`response.py`: a finished
job → body). `catalog.py` lists them; adding a kind is a folder and one line there.

Package files import nothing, so `app.registry.cards` can import a signature module alone."""
