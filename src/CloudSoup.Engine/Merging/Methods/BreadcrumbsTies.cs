// breadcrumbs_ties: the generalized task-arithmetic pipeline (Breadcrumbs sparsification with TIES sign consensus; mergekit/sparsify.py; docs/methods.md).
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class BreadcrumbsTies(IMaskProvider? masks = null) : TaskArithmeticFamily(TaskVectorMethods.BreadcrumbsTies, masks);
