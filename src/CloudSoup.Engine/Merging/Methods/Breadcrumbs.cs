// breadcrumbs: the generalized task-arithmetic pipeline (Davari & Belilovsky 2023, arXiv 2312.06795, per tensor as mergekit/sparsify.py; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Breadcrumbs(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.Breadcrumbs, masks);
