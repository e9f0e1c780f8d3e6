// Boost.Asio compiled once (BOOST_ASIO_SEPARATE_COMPILATION), so that the
// files that use it compile faster.
#include <boost/asio/impl/src.hpp>
