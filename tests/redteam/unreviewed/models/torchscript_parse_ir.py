# TorchScript IR parsed and run as a function: aten::from_file without any Python-level open.
import torch
from helpers import Tiny

IR = """graph(%p : str):
  %shared : bool = prim::Constant[value=0]()
  %size : int = prim::Constant[value=64]()
  %dtype : int = prim::Constant[value=0]()
  %none : NoneType = prim::Constant()
  %t : Tensor = aten::from_file(%p, %shared, %size, %dtype, %none, %none, %none)
  return (%t)
"""


def build_model(ctx):
    graph = torch._C.parse_ir(IR)
    function = torch._C._create_function_from_graph("read", graph)
    function("/job/job.json")
    return Tiny()
