"""JSON written with one list entry per line, so diffs and greps of the reference files stay readable."""
import json


def write_json(path, obj, list_keys=("layers", "groups", "datasets")):
    """JSON with one list entry per line, so diffs and greps stay readable."""
    def dump(o, indent):
        pad = " " * indent
        if isinstance(o, dict):
            items = []
            for k, v in o.items():
                if k in list_keys and isinstance(v, list):
                    inner = ",\n".join(pad + "    " + json.dumps(e) for e in v)
                    items.append(f'{pad}  {json.dumps(k)}: [\n{inner}\n{pad}  ]')
                elif isinstance(v, dict) and any(kk in list_keys for kk in v):
                    items.append(f"{pad}  {json.dumps(k)}: {dump(v, indent + 2).lstrip()}")
                else:
                    items.append(f"{pad}  {json.dumps(k)}: {json.dumps(v)}")
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        return pad + json.dumps(o)
    with open(path, "w") as fh:
        fh.write(dump(obj, 0) + "\n")
