// della: the generalized task-arithmetic pipeline (Deep et al. 2024 MagPrune, arXiv 2406.11617, then TIES sign consensus; mergekit/sparsify.py; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Della(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.Della, masks);
