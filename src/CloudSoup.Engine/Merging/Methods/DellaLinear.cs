// della_linear: the generalized task-arithmetic pipeline (Deep et al. 2024 MagPrune, arXiv 2406.11617, then task arithmetic; mergekit/sparsify.py; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class DellaLinear(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.DellaLinear, masks);
